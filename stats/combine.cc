#include "stats/combine.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "stats/people.h"

namespace accord::stats {
namespace {

constexpr size_t kMaxValueBytes = 64;

bool IsCode(absl::string_view v) {
  if (v.empty() || v.size() > kMaxValueBytes) return false;
  for (char c : v) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

int DimensionIndex(const CountRequest& r, absl::string_view name) {
  for (size_t i = 0; i < r.dimensions.size(); ++i) {
    if (name == DimensionName(r.dimensions[i])) return static_cast<int>(i);
  }
  return -1;
}

bool InCodeList(Dimension d, absl::string_view value) {
  const auto& codes = CodeListColumns(d);
  return std::find(codes.begin(), codes.end(), value) != codes.end();
}

accord::v1::StatisticsCell Cell(const Published& p) {
  accord::v1::StatisticsCell c;
  c.set_count(p.count);
  c.set_suppressed(p.suppressed);
  return c;
}

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0
                    : std::round(100.0 * static_cast<double>(part) /
                                 static_cast<double>(whole));
}

// One published table: rows per holder then "all", `columns` then "total"
// (unless `with_total` is false, for one-column tables).
void AddTable(const std::string& period, const std::string& dimension,
              const std::vector<std::string>& columns,
              const std::vector<std::string>& orgs,
              const std::vector<std::vector<uint64_t>>& cells,
              const SuppressionRule& rule, bool with_total,
              accord::v1::StatisticsResponse* out) {
  const auto published = PublishTable(cells, rule);
  auto* t = out->add_tables();
  t->set_period(period);
  t->set_dimension(dimension);
  for (const auto& c : columns) t->add_columns(c);
  if (with_total) t->add_columns("total");
  const size_t C = columns.size() + (with_total ? 1 : 0);
  for (size_t r = 0; r < published.size(); ++r) {
    auto* row = t->add_rows();
    row->set_org(r < orgs.size() ? orgs[r] : std::string(kAllPartners));
    for (size_t c = 0; c < C; ++c) *row->add_cells() = Cell(published[r][c]);
  }
}

}  // namespace

absl::Status CheckAnswer(const CountRequest& request,
                         const accord::v1::HolderStatisticsResponse& answer) {
  const auto periods =
      PeriodsBetween(request.period, request.from, request.until);
  if (static_cast<size_t>(answer.periods_size()) != periods.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the answer has ", answer.periods_size(),
                     " periods where the run has ", periods.size()));
  }
  uint64_t engagements = 0;
  for (size_t i = 0; i < periods.size(); ++i) {
    const auto& p = answer.periods(static_cast<int>(i));
    if (p.period() != periods[i].label) {
      return absl::InvalidArgumentError(absl::StrCat(
          "period ", i + 1, " of the answer is not ", periods[i].label));
    }
    engagements += p.engagements();
    std::vector<uint64_t> sums(request.dimensions.size(), 0);
    std::vector<std::set<std::string>> seen(request.dimensions.size());
    for (const auto& c : p.counts()) {
      const int d = DimensionIndex(request, c.dimension());
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "period ", p.period(), ": counts by a dimension not asked for"));
      }
      const Dimension dim = request.dimensions[d];
      const bool open = dim == Dimension::kService || dim == Dimension::kNeed;
      if (open ? !IsCode(c.value()) : !InCodeList(dim, c.value())) {
        return absl::InvalidArgumentError(
            absl::StrCat("period ", p.period(), ": a ", c.dimension(),
                         " value that is not a code"));
      }
      if (!seen[d].insert(c.value()).second) {
        return absl::InvalidArgumentError(absl::StrCat("period ", p.period(),
                                                       ": a ", c.dimension(),
                                                       " value counted twice"));
      }
      sums[d] += c.count();
    }
    for (size_t d = 0; d < sums.size(); ++d) {
      const bool need = request.dimensions[d] == Dimension::kNeed;
      if (need ? sums[d] < p.engagements() : sums[d] != p.engagements()) {
        return absl::InvalidArgumentError(
            absl::StrCat("period ", p.period(), ": the counts by ",
                         DimensionName(request.dimensions[d]), " add up to ",
                         sums[d], " for ", p.engagements(), " engagements"));
      }
    }
    if (p.people() > p.engagements()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "period ", p.period(), ": more people than engagements"));
    }
    if (auto s = CheckPersonKeys(p.person_keys(), p.people()); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("period ", p.period(), ": ", s.message()));
    }
  }
  if (!request.completeness && answer.completeness_size() > 0) {
    return absl::InvalidArgumentError("completeness figures not asked for");
  }
  if (request.completeness) {
    const auto& fields = CompletenessFields();
    if (static_cast<size_t>(answer.completeness_size()) != fields.size()) {
      return absl::InvalidArgumentError(
          "completeness figures for other fields than the dataset's");
    }
    for (int i = 0; i < answer.completeness_size(); ++i) {
      const auto& c = answer.completeness(i);
      if (c.field() != fields[i] || c.engagements() != engagements ||
          c.recorded() > c.engagements()) {
        return absl::InvalidArgumentError(
            absl::StrCat("completeness of ", fields[i], " cannot be true"));
      }
    }
  }
  if (!request.outcomes && answer.outcomes_size() > 0) {
    return absl::InvalidArgumentError("outcome figures not asked for");
  }
  std::set<int> instruments;
  for (const auto& o : answer.outcomes()) {
    const ScoreRange r = RangeOf(o.instrument());
    const double most = static_cast<double>(o.people()) * (r.max - r.min);
    if (r.max == 0 || !instruments.insert(o.instrument()).second ||
        o.people() == 0 || o.improved() > o.people() ||
        !(std::fabs(o.sum_change()) <= most)) {
      return absl::InvalidArgumentError("outcome figures that cannot be true");
    }
  }
  return absl::OkStatus();
}

accord::v1::StatisticsResponse Combine(const CountRequest& request,
                                       const SuppressionRule& rule,
                                       std::vector<HolderPart> parts) {
  accord::v1::StatisticsResponse out;
  out.set_suppression_threshold(rule.threshold);
  out.set_rounding(rule.rounding);
  out.set_period(request.period);
  std::sort(
      parts.begin(), parts.end(),
      [](const HolderPart& a, const HolderPart& b) { return a.org < b.org; });
  std::vector<std::string> orgs;
  for (const auto& p : parts) orgs.push_back(p.org);
  const auto periods =
      PeriodsBetween(request.period, request.from, request.until);

  for (size_t i = 0; i < periods.size(); ++i) {
    const std::string& label = periods[i].label;
    const int pi = static_cast<int>(i);
    // Totals: engagements per partner.
    std::vector<std::vector<uint64_t>> totals;
    for (const auto& p : parts) {
      totals.push_back({p.answer.periods(pi).engagements()});
    }
    AddTable(label, "", {"engagements"}, orgs, totals, rule, false, &out);
    // A count of people is no more than the engagements it comes from: it is
    // hidden wherever that total is, so it cannot bound a hidden total.
    std::vector<bool> total_hidden;
    for (const auto& row : out.tables(out.tables_size() - 1).rows()) {
      total_hidden.push_back(row.cells(0).suppressed());
    }
    // One table per dimension.
    for (Dimension dim : request.dimensions) {
      const char* name = DimensionName(dim);
      std::vector<std::string> columns = CodeListColumns(dim);
      if (columns.empty()) {  // open: the values the partners recorded
        std::set<std::string> values;
        bool not_recorded = false;
        for (const auto& p : parts) {
          for (const auto& c : p.answer.periods(pi).counts()) {
            if (c.dimension() != name) continue;
            if (c.value() == kNotRecorded) {
              not_recorded = true;
            } else {
              values.insert(c.value());
            }
          }
        }
        columns.assign(values.begin(), values.end());
        if (not_recorded) columns.emplace_back(kNotRecorded);
      }
      std::map<std::string, size_t> column_of;
      for (size_t c = 0; c < columns.size(); ++c) column_of[columns[c]] = c;
      std::vector<std::vector<uint64_t>> cells(
          parts.size(), std::vector<uint64_t>(columns.size(), 0));
      for (size_t r = 0; r < parts.size(); ++r) {
        for (const auto& c : parts[r].answer.periods(pi).counts()) {
          if (c.dimension() != name) continue;
          cells[r][column_of[c.value()]] = c.count();
        }
      }
      if (!columns.empty()) {
        AddTable(label, name, columns, orgs, cells, rule, true, &out);
      }
    }
    // People, each partner's and distinct across the partnership.
    PeopleUnion all;
    for (size_t r = 0; r < parts.size(); ++r) {
      HolderPart& p = parts[r];
      auto* period = p.answer.mutable_periods(pi);
      auto* pc = out.add_people();
      pc->set_period(label);
      pc->set_org(p.org);
      *pc->mutable_people() =
          Cell(total_hidden[r] ? Published{0, true}
                               : PublishCount(period->people(), rule));
      // Checked by CheckAnswer; the keys are discarded after counting.
      (void)all.Add(period->person_keys(), period->people());
      std::string().swap(*period->mutable_person_keys());
    }
    auto* pc = out.add_people();
    pc->set_period(label);
    pc->set_org(std::string(kAllPartners));
    *pc->mutable_people() =
        Cell(total_hidden.back() ? Published{0, true}
                                 : PublishCount(all.Count(), rule));
  }

  if (request.completeness) {
    for (const auto& p : parts) {
      for (const auto& c : p.answer.completeness()) {
        auto* row = out.add_completeness();
        row->set_org(p.org);
        row->set_field(c.field());
        const Published n = PublishCount(c.engagements(), rule);
        row->set_suppressed(n.suppressed);
        if (!n.suppressed) {
          row->set_recorded_percent(Percent(c.recorded(), c.engagements()));
        }
      }
    }
  }

  if (request.outcomes) {
    struct Sum {
      uint64_t people = 0, improved = 0;
      double change = 0;
    };
    std::map<int, Sum> all;
    auto add = [&](const std::string& org, int instrument, const Sum& s) {
      auto* o = out.add_outcomes();
      o->set_org(org);
      o->set_instrument(static_cast<accord::v1::OutcomeInstrument>(instrument));
      const Published n = PublishCount(s.people, rule);
      *o->mutable_people() = Cell(n);
      o->set_suppressed(n.suppressed);
      if (!n.suppressed && s.people > 0) {
        o->set_mean_change(
            std::round(10.0 * s.change / static_cast<double>(s.people)) / 10.0);
        o->set_improved_percent(Percent(s.improved, s.people));
      }
    };
    for (const auto& p : parts) {
      for (const auto& h : p.answer.outcomes()) {
        const Sum s{h.people(), h.improved(), h.sum_change()};
        add(p.org, h.instrument(), s);
        Sum& a = all[h.instrument()];
        a.people += s.people;
        a.improved += s.improved;
        a.change += s.change;
      }
    }
    for (const auto& [instrument, s] : all) {
      add(std::string(kAllPartners), instrument, s);
    }
  }
  for (const auto& o : orgs) out.add_holders_included(o);
  return out;
}

}  // namespace accord::stats
