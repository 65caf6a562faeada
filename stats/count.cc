#include "stats/count.h"

#include <algorithm>

#include "runtime/clock.h"
#include "stats/people.h"

namespace accord::stats {

const std::vector<std::string>& CompletenessFields() {
  static const auto* kFields = new std::vector<std::string>{
      "referral_source", "need", "ethnicity", "age_band", "disability", "sex"};
  return *kFields;
}

LocalCounts::LocalCounts(CountRequest request)
    : request_(std::move(request)),
      periods_(PeriodsBetween(request_.period, request_.from, request_.until)),
      counts_(periods_.size()),
      recorded_(CompletenessFields().size()) {
  for (auto& p : counts_) {
    p.by_dimension.resize(request_.dimensions.size());
    for (size_t d = 0; d < request_.dimensions.size(); ++d) {
      p.by_dimension[d].coded.assign(
          CodeListColumns(request_.dimensions[d]).size(), 0);
    }
  }
}

void LocalCounts::Add(int64_t person, const accord::v1::Engagement& e,
                      accord::v1::AgeBand age_band) {
  const absl::Time start = FromProtoTime(e.started_at());
  if (start < request_.from || start >= request_.until) return;
  // The period holding `start`: the last that starts at or before it.
  auto it = std::upper_bound(
      periods_.begin(), periods_.end(), start,
      [](absl::Time t, const Period& p) { return t < p.start; });
  if (it == periods_.begin()) return;
  PeriodCounts& pc = counts_[static_cast<size_t>(it - periods_.begin()) - 1];
  ++pc.engagements;
  pc.people.insert(person);
  for (size_t d = 0; d < request_.dimensions.size(); ++d) {
    DimensionCounts& cells = pc.by_dimension[d];
    auto count_open = [&cells](absl::string_view value) {
      auto found = cells.open.find(value);
      if (found == cells.open.end()) {
        cells.open.emplace(std::string(value), 1);
      } else {
        ++found->second;
      }
    };
    switch (request_.dimensions[d]) {
      case Dimension::kService:
        count_open(e.service());
        break;
      case Dimension::kNeed:
        if (e.needs().empty()) count_open(kNotRecorded);
        for (const auto& need : e.needs()) count_open(need);
        break;
      default:
        ++cells.coded[static_cast<size_t>(
            ColumnOf(request_.dimensions[d], e, age_band))];
    }
  }
  ++engagements_;
  if (request_.completeness) {
    const auto& m = e.monitoring();
    const bool recorded[] = {
        e.referral_source() != accord::v1::REFERRAL_SOURCE_UNSPECIFIED,
        !e.needs().empty(),
        m.ethnicity() != accord::v1::ETHNICITY_UNSPECIFIED,
        age_band != accord::v1::AGE_BAND_UNSPECIFIED,
        m.disability() != accord::v1::DISABILITY_UNSPECIFIED,
        m.sex() != accord::v1::SEX_UNSPECIFIED};
    for (size_t i = 0; i < recorded_.size(); ++i) recorded_[i] += recorded[i];
  }
  if (request_.outcomes) {
    for (const auto& o : e.outcomes()) {
      if (o.instrument() == accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED)
        continue;
      Measures& m = measures_[person][o.instrument()];
      const absl::Time at =
          o.has_measured_at() ? FromProtoTime(o.measured_at()) : start;
      if (o.stage() == accord::v1::OUTCOME_STAGE_BEFORE && at < m.before_at) {
        m.before_at = at;
        m.before = o.score();
      } else if (o.stage() == accord::v1::OUTCOME_STAGE_AFTER &&
                 at >= m.after_at) {
        m.after_at = at;
        m.after = o.score();
      }
    }
  }
}

std::vector<int64_t> LocalCounts::People() const {
  absl::flat_hash_set<int64_t> all;
  for (const auto& p : counts_) all.insert(p.people.begin(), p.people.end());
  return {all.begin(), all.end()};
}

accord::v1::HolderStatisticsResponse LocalCounts::Finish(
    const absl::flat_hash_map<int64_t, std::string>& groups) const {
  return Finish([&groups](int64_t person, std::string* out) {
    if (auto g = groups.find(person); g != groups.end()) out->append(g->second);
  });
}

accord::v1::HolderStatisticsResponse LocalCounts::Finish(
    const AppendGroup& append_group) const {
  accord::v1::HolderStatisticsResponse out;
  for (size_t i = 0; i < periods_.size(); ++i) {
    const PeriodCounts& pc = counts_[i];
    auto* p = out.add_periods();
    p->set_period(periods_[i].label);
    p->set_engagements(pc.engagements);
    for (size_t d = 0; d < request_.dimensions.size(); ++d) {
      const Dimension dim = request_.dimensions[d];
      const DimensionCounts& cells = pc.by_dimension[d];
      auto add = [&](absl::string_view value, uint64_t n) {
        auto* c = p->add_counts();
        c->set_dimension(DimensionName(dim));
        c->set_value(std::string(value));
        c->set_count(n);
      };
      const auto& columns = CodeListColumns(dim);
      for (size_t c = 0; c < cells.coded.size(); ++c) {
        if (cells.coded[c] > 0) add(columns[c], cells.coded[c]);
      }
      std::vector<std::pair<std::string, uint64_t>> open(cells.open.begin(),
                                                         cells.open.end());
      std::sort(open.begin(), open.end());
      for (const auto& [value, n] : open) add(value, n);
    }
    p->set_people(pc.people.size());
    std::string* keys = p->mutable_person_keys();
    keys->reserve(pc.people.size() * (1 + 2 * kPersonKeyBytes));
    for (int64_t person : pc.people) append_group(person, keys);
  }
  if (request_.completeness) {
    for (size_t i = 0; i < recorded_.size(); ++i) {
      auto* c = out.add_completeness();
      c->set_field(CompletenessFields()[i]);
      c->set_recorded(recorded_[i]);
      c->set_engagements(engagements_);
    }
  }
  if (request_.outcomes) {
    std::map<int, accord::v1::HolderOutcome> by_instrument;
    for (const auto& [person, instruments] : measures_) {
      for (const auto& [instrument, m] : instruments) {
        if (m.before_at == absl::InfiniteFuture() ||
            m.after_at == absl::InfinitePast()) {
          continue;
        }
        auto& o = by_instrument[instrument];
        o.set_instrument(
            static_cast<accord::v1::OutcomeInstrument>(instrument));
        o.set_people(o.people() + 1);
        o.set_sum_change(o.sum_change() + (m.after - m.before));
        if (m.after > m.before) o.set_improved(o.improved() + 1);
      }
    }
    for (auto& [instrument, o] : by_instrument) *out.add_outcomes() = o;
  }
  return out;
}

}  // namespace accord::stats
