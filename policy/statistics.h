// What a STATISTICS rule allows beyond the decision itself: the dimensions,
// reporting periods and extras a request may ask for, and the small-number
// suppression its figures get (the rule's `statistics` clause,
// docs/STATISTICS.md). Used by the gateway before it asks any holder and by
// every agent before it counts. Thread-safe (pure functions).
#ifndef ACCORD_POLICY_STATISTICS_H_
#define ACCORD_POLICY_STATISTICS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "accord/v1/common.pb.h"
#include "policy/policy.h"
#include "stats/suppress.h"

namespace accord::policy {

// What a statistics request asks for.
struct StatisticsScope {
  std::vector<std::string> dimensions;
  accord::v1::ReportingPeriod period = accord::v1::REPORTING_PERIOD_UNSPECIFIED;
  bool completeness = false;
  bool outcomes = false;
};

// OK when the allowed decision `d`'s rule permits `scope`; otherwise
// PermissionDenied naming the agreement, the rule and what it allows.
absl::Status CheckStatisticsScope(const Decision& d,
                                  const StatisticsScope& scope);

// The suppression of the decision's rule (NHS Digital's rule where the rule
// sets none).
stats::SuppressionRule SuppressionOf(const Decision& d);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_STATISTICS_H_
