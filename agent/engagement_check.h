// What makes an engagement's monitoring data one the partnership's figures
// can add up (docs/STATISTICS.md). Every way an engagement comes in (the
// local API's RecordEngagement, which `accordctl agent load` uses for an
// AgentDataset's engagements, and bulk import) checks it here, after the
// schema's generic rules (ValidateMessage refuses enum values outside their
// enum and unset instruments and stages on the request paths).
//
// Each outcome measure has an instrument and a stage, and a score within the
// instrument's range (stats::CheckScore); an engagement has at most one
// before and one after measure per instrument, and an after measure is not
// dated before its before measure when both are dated.
//
// Pure functions; thread-safe.
#ifndef ACCORD_AGENT_ENGAGEMENT_CHECK_H_
#define ACCORD_AGENT_ENGAGEMENT_CHECK_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "accord/v1/agent.pb.h"

namespace accord::agent {

// The first fault of an engagement: the outcome measure at `outcome`, its
// field `field` ("instrument", "stage", "score" or "measured_at"), and what
// is wrong with it. `what` never contains a value the caller gave (a score
// may be health data), only the instrument's code and range.
struct EngagementProblem {
  int outcome = 0;
  absl::string_view field;
  std::string what;
};

// The first problem of `engagement` in the order of its outcome measures, or
// nullopt when it passes. For callers that name the fault in their own terms
// (an import names columns).
std::optional<EngagementProblem> FindEngagementProblem(
    const accord::v1::Engagement& engagement);

// InvalidArgument "field <path>outcomes[1].score: a wemwbs score lies between
// 14 and 70", where `path` is how the caller reaches the engagement
// ("engagement." in a RecordEngagementRequest, "" for the engagement
// itself); OK when there is no problem.
[[nodiscard]] absl::Status CheckEngagement(
    const accord::v1::Engagement& engagement, absl::string_view path = "");

}  // namespace accord::agent

#endif  // ACCORD_AGENT_ENGAGEMENT_CHECK_H_
