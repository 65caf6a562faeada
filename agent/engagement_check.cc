#include "agent/engagement_check.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/clock.h"
#include "stats/dataset.h"

namespace accord::agent {
namespace {

using accord::v1::OutcomeInstrument;
using accord::v1::OutcomeMeasure;
using accord::v1::OutcomeStage;

// "wemwbs, swemwbs, work_star": the instruments' codes for messages.
std::string InstrumentCodes() {
  std::vector<std::string> codes;
  const auto* d = accord::v1::OutcomeInstrument_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const int n = d->value(i)->number();
    if (n != 0) codes.push_back(stats::InstrumentCode(OutcomeInstrument(n)));
  }
  return absl::StrJoin(codes, ", ");
}

bool Known(OutcomeInstrument i) {
  return i != accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED &&
         accord::v1::OutcomeInstrument_IsValid(i);
}

bool Known(OutcomeStage s) {
  return s != accord::v1::OUTCOME_STAGE_UNSPECIFIED &&
         accord::v1::OutcomeStage_IsValid(s);
}

const char* StageWord(OutcomeStage s) {
  return s == accord::v1::OUTCOME_STAGE_BEFORE ? "before" : "after";
}

}  // namespace

std::optional<EngagementProblem> FindEngagementProblem(
    const accord::v1::Engagement& engagement) {
  // The measure already seen for each (instrument, stage), by index.
  std::map<std::pair<int, int>, int> seen;
  const auto& outcomes = engagement.outcomes();
  for (int i = 0; i < outcomes.size(); ++i) {
    const OutcomeMeasure& m = outcomes[i];
    if (!Known(m.instrument())) {
      return EngagementProblem{
          i, "instrument",
          absl::StrCat("required: one of ", InstrumentCodes())};
    }
    if (!Known(m.stage())) {
      return EngagementProblem{i, "stage", "required: before or after"};
    }
    if (auto s = stats::CheckScore(m.instrument(), m.score()); !s.ok()) {
      return EngagementProblem{i, "score", std::string(s.message())};
    }
    const std::string code = stats::InstrumentCode(m.instrument());
    if (!seen.emplace(std::make_pair(m.instrument(), m.stage()), i).second) {
      return EngagementProblem{
          i, "stage",
          absl::StrCat("a second ", StageWord(m.stage()), " measure of ", code,
                       "; an engagement has at most one before and one after "
                       "measure per instrument")};
    }
  }
  // An after measure dated before its before measure, whichever comes first
  // in the list; the after measure is the one at fault.
  for (int i = 0; i < outcomes.size(); ++i) {
    const OutcomeMeasure& after = outcomes[i];
    if (after.stage() != accord::v1::OUTCOME_STAGE_AFTER ||
        !after.has_measured_at()) {
      continue;
    }
    auto it = seen.find(
        std::make_pair(after.instrument(), accord::v1::OUTCOME_STAGE_BEFORE));
    if (it == seen.end()) continue;
    const OutcomeMeasure& before = outcomes[it->second];
    if (!before.has_measured_at()) continue;
    if (FromProtoTime(after.measured_at()) <
        FromProtoTime(before.measured_at())) {
      return EngagementProblem{
          i, "measured_at",
          absl::StrCat("the after measure of ",
                       stats::InstrumentCode(after.instrument()),
                       " is dated before its before measure")};
    }
  }
  return std::nullopt;
}

absl::Status CheckEngagement(const accord::v1::Engagement& engagement,
                             absl::string_view path) {
  auto problem = FindEngagementProblem(engagement);
  if (!problem) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("field ", path, "outcomes[", problem->outcome, "].",
                   problem->field, ": ", problem->what));
}

}  // namespace accord::agent
