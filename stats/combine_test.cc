#include "stats/combine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "stats/people.h"

namespace accord::stats {
namespace {

using ::testing::HasSubstr;

absl::Time Day(int y, int m, int d) {
  return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
}

linkage::LinkageKey TestKey() {
  return std::move(*linkage::LinkageKey::FromBytes(std::string(32, 'k')));
}

CountRequest Quarters(std::vector<Dimension> dims) {
  CountRequest r;
  r.period = accord::v1::REPORTING_PERIOD_QUARTER;
  r.from = Day(2026, 4, 1);
  r.until = Day(2026, 10, 1);
  r.dimensions = std::move(dims);
  r.completeness = true;
  r.outcomes = true;
  return r;
}

accord::v1::Engagement Engagement(absl::Time start, accord::v1::Ethnicity e,
                                  std::string service = "drop-in") {
  accord::v1::Engagement out;
  out.set_service(std::move(service));
  out.mutable_started_at()->set_seconds(absl::ToUnixSeconds(start));
  out.mutable_monitoring()->set_ethnicity(e);
  return out;
}

// A holder's answer for people with the given tokens (one token each).
accord::v1::HolderStatisticsResponse Answer(
    const CountRequest& r, RunKeyer& keyer,
    const std::vector<std::pair<int64_t, accord::v1::Engagement>>& rows,
    const std::map<int64_t, std::string>& tokens) {
  LocalCounts counts(r);
  for (const auto& [person, e] : rows)
    counts.Add(person, e, accord::v1::AGE_BAND_25_34);
  absl::flat_hash_map<int64_t, std::string> groups;
  for (int64_t person : counts.People()) {
    std::vector<std::string> t;
    if (auto it = tokens.find(person); it != tokens.end())
      t.push_back(it->second);
    keyer.AppendGroup(t, &groups[person]);
  }
  return counts.Finish(groups);
}

TEST(CombineTest, TablesPerPeriodAndPeopleAcrossPartners) {
  const CountRequest r = Quarters({Dimension::kEthnicGroup});
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  const std::string shared(32, 'S'), a_only(32, 'A'), b_only(32, 'B');
  // Partner a: two people in Q2 (one of them also at b); partner b: the
  // shared person and another in Q2, one in Q3.
  auto a = Answer(
      r, *keyer,
      {{1, Engagement(Day(2026, 4, 2), accord::v1::ETHNICITY_WHITE_IRISH)},
       {2, Engagement(Day(2026, 5, 2), accord::v1::ETHNICITY_BLACK_AFRICAN)}},
      {{1, shared}, {2, a_only}});
  auto b = Answer(
      r, *keyer,
      {{7, Engagement(Day(2026, 6, 30), accord::v1::ETHNICITY_WHITE_IRISH)},
       {8, Engagement(Day(2026, 4, 9), accord::v1::ETHNICITY_UNSPECIFIED)},
       {8, Engagement(Day(2026, 8, 9), accord::v1::ETHNICITY_UNSPECIFIED)}},
      {{7, shared}, {8, b_only}});
  ASSERT_TRUE(CheckAnswer(r, a).ok()) << CheckAnswer(r, a);
  ASSERT_TRUE(CheckAnswer(r, b).ok()) << CheckAnswer(r, b);
  EXPECT_EQ(a.periods(0).engagements(), 2u);
  EXPECT_EQ(b.periods(0).engagements(), 2u);
  EXPECT_EQ(b.periods(1).engagements(), 1u);

  auto out = Combine(r, {0, 1}, {{"a", a}, {"b", b}});
  // Q2 totals, Q2 by ethnic group, Q3 totals, Q3 by ethnic group.
  ASSERT_EQ(out.tables_size(), 4);
  const auto& q2 = out.tables(1);
  EXPECT_EQ(q2.period(), "2026-Q2");
  EXPECT_EQ(q2.dimension(), "ethnic_group");
  ASSERT_EQ(q2.columns_size(), 8);  // 6 groups, not_recorded, total
  EXPECT_EQ(q2.columns(3), "white");
  ASSERT_EQ(q2.rows_size(), 3);
  EXPECT_EQ(q2.rows(2).org(), "all");
  EXPECT_EQ(q2.rows(2).cells(3).count(), 2u);  // white: one at each
  EXPECT_EQ(q2.rows(2).cells(7).count(), 4u);  // every Q2 engagement
  // People in Q2: a has 2, b has 2, but one woman is at both: 3 in all.
  std::map<std::string, uint64_t> people;
  for (const auto& p : out.people())
    if (p.period() == "2026-Q2") people[p.org()] = p.people().count();
  EXPECT_EQ(people["a"], 2u);
  EXPECT_EQ(people["b"], 2u);
  EXPECT_EQ(people["all"], 3u);
  // Completeness of ethnicity: a recorded 2 of 2, b 1 of 3.
  for (const auto& c : out.completeness()) {
    if (c.field() != "ethnicity") continue;
    EXPECT_EQ(c.recorded_percent(), c.org() == "a" ? 100 : 33);
  }
}

TEST(CombineTest, EveryPublishedCountIsSuppressed) {
  const CountRequest r = Quarters({Dimension::kSex});
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  auto a = Answer(
      r, *keyer,
      {{1, Engagement(Day(2026, 4, 2), accord::v1::ETHNICITY_WHITE_IRISH)}},
      {{1, std::string(32, 'x')}});
  auto out = Combine(r, {}, {{"a", a}});
  for (const auto& t : out.tables())
    for (const auto& row : t.rows())
      for (const auto& c : row.cells())
        if (c.count() != 0) {
          EXPECT_GE(c.count(), 8u);
        }
  for (const auto& p : out.people()) {
    if (p.period() == "2026-Q2") {
      EXPECT_TRUE(p.people().suppressed());
    }
  }
  for (const auto& c : out.completeness()) {
    EXPECT_TRUE(c.suppressed());
    EXPECT_EQ(c.recorded_percent(), 0);
  }
}

TEST(CombineTest, PeopleAreHiddenWhereTheirEngagementTotalIs) {
  const CountRequest r = Quarters({});
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  auto women = [&](int n, int64_t first) {
    std::vector<std::pair<int64_t, accord::v1::Engagement>> rows;
    for (int i = 0; i < n; ++i) {
      rows.push_back(
          {first + i,
           Engagement(Day(2026, 4, 2), accord::v1::ETHNICITY_WHITE_IRISH)});
    }
    return Answer(r, *keyer, rows, {});
  };
  // a's 3 is hidden, so b's 30 is hidden too (the column of totals would
  // give a's away); b's 30 people would then bound b's hidden total.
  auto out = Combine(
      r, {7, 1},
      {{"a", women(3, 0)}, {"b", women(30, 100)}, {"c", women(40, 200)}});
  const auto& totals = out.tables(0);
  ASSERT_EQ(totals.rows_size(), 4);
  EXPECT_TRUE(totals.rows(0).cells(0).suppressed());
  EXPECT_TRUE(totals.rows(1).cells(0).suppressed());
  EXPECT_EQ(totals.rows(2).cells(0).count(), 40u);
  std::map<std::string, accord::v1::StatisticsCell> people;
  for (const auto& p : out.people())
    if (p.period() == "2026-Q2") people[p.org()] = p.people();
  EXPECT_TRUE(people["a"].suppressed());
  EXPECT_TRUE(people["b"].suppressed());
  EXPECT_EQ(people["c"].count(), 40u);
  EXPECT_EQ(people["all"].count(), 73u);
}

TEST(CombineTest, OutcomeChangeFromEarliestBeforeToLatestAfter) {
  CountRequest r = Quarters({});
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  auto e = Engagement(Day(2026, 4, 2), accord::v1::ETHNICITY_WHITE_IRISH);
  auto* before = e.add_outcomes();
  before->set_instrument(accord::v1::OUTCOME_INSTRUMENT_WEMWBS);
  before->set_stage(accord::v1::OUTCOME_STAGE_BEFORE);
  before->set_score(40);
  auto* after = e.add_outcomes();
  *after = *before;
  after->set_stage(accord::v1::OUTCOME_STAGE_AFTER);
  after->set_score(50);
  after->mutable_measured_at()->set_seconds(
      absl::ToUnixSeconds(Day(2026, 7, 1)));
  auto no_after =
      Engagement(Day(2026, 4, 3), accord::v1::ETHNICITY_WHITE_IRISH);
  *no_after.add_outcomes() = *before;
  auto a = Answer(r, *keyer, {{1, e}, {2, no_after}}, {});
  ASSERT_TRUE(CheckAnswer(r, a).ok());
  ASSERT_EQ(a.outcomes_size(), 1);
  EXPECT_EQ(a.outcomes(0).people(), 1u);
  EXPECT_EQ(a.outcomes(0).sum_change(), 10);
  EXPECT_EQ(a.outcomes(0).improved(), 1u);
  auto out = Combine(r, {0, 1}, {{"a", a}});
  ASSERT_EQ(out.outcomes_size(), 2);  // a, all
  EXPECT_EQ(out.outcomes(1).org(), "all");
  EXPECT_EQ(out.outcomes(1).mean_change(), 10);
  EXPECT_EQ(out.outcomes(1).improved_percent(), 100);
}

TEST(CombineTest, ALyingHoldersAnswerIsRefusedNamingWhatIsWrong) {
  const CountRequest r = Quarters({Dimension::kEthnicity});
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  const auto good = Answer(
      r, *keyer,
      {{1, Engagement(Day(2026, 4, 2), accord::v1::ETHNICITY_WHITE_IRISH)}},
      {{1, std::string(32, 'x')}});
  ASSERT_TRUE(CheckAnswer(r, good).ok());

  auto missing_period = good;
  missing_period.mutable_periods()->RemoveLast();
  EXPECT_THAT(CheckAnswer(r, missing_period).message(),
              HasSubstr("the answer has 1 periods where the run has 2"));

  auto not_a_code = good;
  not_a_code.mutable_periods(0)->mutable_counts(0)->set_value("Jane Doe");
  EXPECT_THAT(CheckAnswer(r, not_a_code).message(),
              HasSubstr("a ethnicity value that is not a code"));

  auto inflated = good;
  inflated.mutable_periods(0)->mutable_counts(0)->set_count(5);
  EXPECT_THAT(
      CheckAnswer(r, inflated).message(),
      HasSubstr("the counts by ethnicity add up to 5 for 1 engagements"));

  auto other_dimension = good;
  other_dimension.mutable_periods(0)->mutable_counts(0)->set_dimension("sex");
  EXPECT_THAT(CheckAnswer(r, other_dimension).message(),
              HasSubstr("counts by a dimension not asked for"));

  auto bad_keys = good;
  bad_keys.mutable_periods(0)->set_person_keys("\x05short");
  EXPECT_THAT(CheckAnswer(r, bad_keys).message(),
              HasSubstr("person_keys: group 1 is malformed"));

  auto more_people = good;
  more_people.mutable_periods(0)->set_people(2);
  EXPECT_THAT(CheckAnswer(r, more_people).message(),
              HasSubstr("more people than engagements"));

  auto impossible = good;
  auto* o = impossible.add_outcomes();
  o->set_instrument(accord::v1::OUTCOME_INSTRUMENT_WEMWBS);
  o->set_people(1);
  o->set_sum_change(1000);
  EXPECT_THAT(CheckAnswer(r, impossible).message(),
              HasSubstr("outcome figures that cannot be true"));
}

TEST(PeopleTest, KeyedValuesMatchWithinARunOnly) {
  const std::string token(32, 'T');
  auto run1 = RunKeyer::Create(TestKey(), std::string(16, '1'));
  auto run2 = RunKeyer::Create(TestKey(), std::string(16, '2'));
  ASSERT_TRUE(run1.ok() && run2.ok());
  std::string g1, g1_again, g2;
  run1->AppendGroup({token}, &g1);
  run1->AppendGroup({token}, &g1_again);
  run2->AppendGroup({token}, &g2);
  EXPECT_EQ(g1, g1_again);
  EXPECT_NE(g1, g2);
  EXPECT_EQ(g1.size(), 1 + kPersonKeyBytes);
  // Never the token itself.
  EXPECT_EQ(g1.find(token.substr(0, 8)), std::string::npos);
  // Another linkage key gives other values.
  auto other = RunKeyer::Create(
      std::move(*linkage::LinkageKey::FromBytes(std::string(32, 'z'))),
      std::string(16, '1'));
  std::string g3;
  other->AppendGroup({token}, &g3);
  EXPECT_NE(g1, g3);
  EXPECT_FALSE(RunKeyer::Create(TestKey(), "short").ok());
}

TEST(PeopleTest, GroupsSharingAnyValueAreOnePerson) {
  auto keyer = RunKeyer::Create(TestKey(), std::string(16, 'r'));
  ASSERT_TRUE(keyer.ok());
  const std::string nhs(32, 'N'), name_dob(32, 'D'), other(32, 'O');
  std::string at_a, at_b;
  keyer->AppendGroup({name_dob, nhs}, &at_a);  // known by both at a
  keyer->AppendGroup({other}, &at_a);
  keyer->AppendGroup({nhs}, &at_b);  // only her NHS number at b
  keyer->AppendGroup({}, &at_b);     // no token: matches nobody
  PeopleUnion all;
  ASSERT_TRUE(all.Add(at_a, 2).ok());
  ASSERT_TRUE(all.Add(at_b, 2).ok());
  EXPECT_EQ(all.Count(), 3u);
  EXPECT_FALSE(all.Add(at_b, 3).ok());
  EXPECT_EQ(all.Count(), 3u);
}

}  // namespace
}  // namespace accord::stats
