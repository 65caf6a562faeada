// The gateway's side of a statistics run: check each holder's answer (an
// agent may be broken or lying), add the answers up into the partnership's
// tables, count distinct people across partners, and apply disclosure
// control (suppress.h) to every published count: per-partner cells, row and
// column totals, people, completeness and outcome figures. No count leaves
// unsuppressed. Thread-safe (pure functions).
#ifndef ACCORD_STATS_COMBINE_H_
#define ACCORD_STATS_COMBINE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/gateway.pb.h"
#include "stats/count.h"
#include "stats/suppress.h"

namespace accord::stats {

// The "org" of the partnership's row of totals.
inline constexpr absl::string_view kAllPartners = "all";

struct HolderPart {
  std::string org;
  accord::v1::HolderStatisticsResponse answer;
};

// OK when `answer` answers `request`: every period of the run once and in
// order, counts only for the dimensions asked and values of their code lists
// (short printable codes for service and need), each engagement counted
// once per dimension (at least once for need), people no more than
// engagements, well-formed person keys, and completeness and outcome figures
// that can be true. InvalidArgument naming what is wrong otherwise.
absl::Status CheckAnswer(const CountRequest& request,
                         const accord::v1::HolderStatisticsResponse& answer);

// The published figures of checked answers. `parts` are consumed (their
// person keys are moved out and discarded).
accord::v1::StatisticsResponse Combine(const CountRequest& request,
                                       const SuppressionRule& rule,
                                       std::vector<HolderPart> parts);

}  // namespace accord::stats

#endif  // ACCORD_STATS_COMBINE_H_
