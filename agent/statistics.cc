#include "agent/statistics.h"

#include "absl/strings/str_cat.h"
#include "policy/statistics.h"
#include "stats/count.h"
#include "stats/people.h"

namespace accord::agent {

StatisticsCounter::StatisticsCounter(
    std::string self_org,
    std::shared_ptr<const PartnershipDirectory> partnership, AgentStore* store,
    const policy::Engine* policy, const linkage::LinkageKey* linkage_key,
    const Clock* clock)
    : self_org_(std::move(self_org)),
      partnership_(std::move(partnership)),
      store_(store),
      policy_(policy),
      linkage_key_(linkage_key),
      clock_(clock) {}

absl::StatusOr<accord::v1::HolderStatisticsResponse> StatisticsCounter::Answer(
    const accord::v1::HolderStatisticsRequest& request) const {
  if (partnership_->FindOrg(request.requester_org()) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("requester '", request.requester_org(),
                     "' is not a member of this partnership"));
  }
  stats::CountRequest count;
  count.period = request.period();
  count.from = FromProtoTime(request.range().from());
  count.until = FromProtoTime(request.range().until());
  if (!request.range().has_from() || !request.range().has_until()) {
    return absl::InvalidArgumentError(
        "field range: both 'from' and 'until' are required");
  }
  if (auto s = stats::CheckRange(count.period, count.from, count.until);
      !s.ok()) {
    return s;
  }
  policy::StatisticsScope scope;
  for (const auto& name : request.dimensions()) {
    const auto dim = stats::DimensionNamed(name);
    if (!dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("field dimensions: '", name.substr(0, 40),
                       "' is not a dimension; the dimensions are: ",
                       stats::DimensionNames()));
    }
    count.dimensions.push_back(*dim);
    scope.dimensions.push_back(name);
  }
  count.completeness = scope.completeness = request.completeness();
  count.outcomes = scope.outcomes = request.outcomes();
  scope.period = request.period();

  // Defence in depth: this agent's own copy of the agreements must agree.
  policy::Request decide;
  decide.requester_org = request.requester_org();
  decide.holder_org = self_org_;
  decide.action = accord::v1::ACTION_STATISTICS;
  decide.purpose = request.purpose();
  decide.at = clock_->Now();
  const policy::Decision mine = policy_->Decide(decide);
  if (!mine.allowed()) {
    return absl::PermissionDeniedError(
        absl::StrCat("this holder's copy of the agreements does not allow it: ",
                     mine.Explanation()));
  }
  if (!policy::SameDecision(mine.ToProto(), request.decision())) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the gateway's decision (rule ", request.decision().rule_id(),
        ") differs from this holder's (rule ", mine.rule_id(), ")"));
  }
  if (auto s = policy::CheckStatisticsScope(mine, scope); !s.ok()) return s;

  auto keyer = stats::RunKeyer::Create(*linkage_key_, request.run_id());
  if (!keyer.ok()) return keyer.status();

  stats::LocalCounts counts(count);
  absl::flat_hash_map<int64_t, AgentStore::Snapshot::TokenPrefixes> tokens;
  auto read = store_->Read([&](AgentStore::Snapshot& snap) -> absl::Status {
    // The dates of birth first (an engagement that records no age band gets
    // the one of its person's age when it started), then one pass over the
    // engagements, counting as it goes.
    auto dobs = snap.DatesOfBirth(count.from, count.until);
    if (!dobs.ok()) return dobs.status();
    auto s = snap.EngagementsStarted(
        count.from, count.until,
        [&](int64_t person, const accord::v1::Engagement& e) {
          accord::v1::AgeBand band = e.monitoring().age_band();
          if (band == accord::v1::AGE_BAND_UNSPECIFIED) {
            if (auto it = dobs->find(person); it != dobs->end()) {
              band =
                  stats::AgeBandAt(it->second, FromProtoTime(e.started_at()));
            }
          }
          counts.Add(person, e, band);
        });
    if (!s.ok()) return s;
    const auto people = counts.People();
    auto found = snap.TokenPrefixesOf({people.begin(), people.end()});
    if (!found.ok()) return found.status();
    tokens = *std::move(found);
    return absl::OkStatus();
  });
  if (!read.ok()) {
    return absl::UnavailableError(
        absl::StrCat("this agent could not read its store: ", read.message()));
  }
  return counts.Finish([&](int64_t person, std::string* out) {
    auto it = tokens.find(person);
    keyer->AppendPrefixGroup(
        it == tokens.end() ? absl::string_view() : it->second.view(), out);
  });
}

}  // namespace accord::agent
