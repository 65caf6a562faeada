// An agent's own counts for a statistics run: new engagements per period by
// the dimensions asked for, distinct people, data completeness and outcome
// change, unsuppressed (the gateway suppresses the partnership's table).
// Only counts and keyed values leave: no row, no name, no token.
// Not thread-safe; one per run.
#ifndef ACCORD_STATS_COUNT_H_
#define ACCORD_STATS_COUNT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "accord/v1/agent.pb.h"
#include "stats/dataset.h"

namespace accord::stats {

// A run's question, as checked by the caller.
struct CountRequest {
  accord::v1::ReportingPeriod period = accord::v1::REPORTING_PERIOD_QUARTER;
  absl::Time from;
  absl::Time until;
  std::vector<Dimension> dimensions;
  bool completeness = false;
  bool outcomes = false;
};

// The fields whose completeness is reported, in order.
const std::vector<std::string>& CompletenessFields();

class LocalCounts {
 public:
  explicit LocalCounts(CountRequest request);

  // One engagement of `person` (the agent's own id for her). Engagements
  // that did not start in [from, until) are ignored. `age_band` is the
  // engagement's, derived from her date of birth when not recorded.
  void Add(int64_t person, const accord::v1::Engagement& e,
           accord::v1::AgeBand age_band);

  // Everyone counted, each once.
  std::vector<int64_t> People() const;

  // The answer; `append_group(person, out)` appends the person's keyed group
  // (people.h) to `out`, once for each period she is counted in.
  using AppendGroup = std::function<void(int64_t person, std::string* out)>;
  accord::v1::HolderStatisticsResponse Finish(
      const AppendGroup& append_group) const;
  // The same with the groups computed beforehand.
  accord::v1::HolderStatisticsResponse Finish(
      const absl::flat_hash_map<int64_t, std::string>& groups) const;

 private:
  // One dimension's counts in one period: by column of its code list, or
  // by value for the open dimensions (service, need).
  struct DimensionCounts {
    std::vector<uint64_t> coded;
    absl::flat_hash_map<std::string, uint64_t> open;
  };
  struct PeriodCounts {
    uint64_t engagements = 0;
    std::vector<DimensionCounts> by_dimension;
    absl::flat_hash_set<int64_t> people;
  };
  struct Measures {
    absl::Time before_at = absl::InfiniteFuture();
    double before = 0;
    absl::Time after_at = absl::InfinitePast();
    double after = 0;
  };

  const CountRequest request_;
  const std::vector<Period> periods_;
  std::vector<PeriodCounts> counts_;
  uint64_t engagements_ = 0;
  std::vector<uint64_t> recorded_;  // per CompletenessFields()
  // person -> instrument -> her earliest before and latest after.
  absl::flat_hash_map<int64_t, std::map<int, Measures>> measures_;
};

}  // namespace accord::stats

#endif  // ACCORD_STATS_COUNT_H_
