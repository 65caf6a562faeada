// Statistics runs with scripted holders and an in-memory audit log: who is
// asked and under which decision, what a lying holder's answer leaves, what
// is refused and recorded, and that nothing is released undurably.
#include "gateway/statistics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/test_fakes.h"
#include "stats/count.h"
#include "stats/people.h"

namespace accord::gateway {
namespace {

using testing::ExamplePartnership;
using testing::FakeHolderClients;
using ::testing::HasSubstr;
using testing::Result;

// 2026-04-01 and 2026-10-01, UTC.
constexpr int64_t kFrom = 1775001600, kUntil = 1790812800;

accord::v1::StatisticsRequest BySex() {
  accord::v1::StatisticsRequest r;
  r.set_request_id("stats-1");
  r.set_purpose("monitoring");
  r.mutable_range()->mutable_from()->set_seconds(kFrom);
  r.mutable_range()->mutable_until()->set_seconds(kUntil);
  r.set_period(accord::v1::REPORTING_PERIOD_QUARTER);
  r.add_dimensions("sex");
  r.add_holders("refuge");
  r.add_holders("rape-crisis");
  return r;
}

// What an honest agent answers for `n` women who started in April.
accord::v1::HolderStatisticsResponse Honest(int n) {
  stats::CountRequest c;
  c.period = accord::v1::REPORTING_PERIOD_QUARTER;
  c.from = absl::FromUnixSeconds(kFrom);
  c.until = absl::FromUnixSeconds(kUntil);
  c.dimensions = {stats::Dimension::kSex};
  stats::LocalCounts counts(c);
  accord::v1::Engagement e;
  e.set_service("s");
  e.mutable_started_at()->set_seconds(kFrom + 86400);
  e.mutable_monitoring()->set_sex(accord::v1::SEX_FEMALE);
  for (int i = 0; i < n; ++i) counts.Add(i, e, accord::v1::AGE_BAND_25_34);
  auto key = linkage::LinkageKey::FromBytes(std::string(32, 'k'));
  auto keyer = stats::RunKeyer::Create(*key, std::string(16, 'r'));
  absl::flat_hash_map<int64_t, std::string> groups;
  for (int64_t p : counts.People())
    keyer->AppendGroup({std::string(32, static_cast<char>('a' + p))},
                       &groups[p]);
  return counts.Finish(groups);
}

struct StatisticsFixture : ::testing::Test {
  StatisticsFixture()
      : holders({"rape-crisis", "refuge", "womens-centre", "law-centre",
                 "employment", "childrens-services"}),
        runs(p.pipeline.get(), p.policy.get(), &holders) {}

  absl::StatusOr<accord::v1::StatisticsResponse> Run(
      const accord::v1::StatisticsRequest& r) {
    Result<accord::v1::StatisticsResponse> result;
    runs.Statistics(p.Org("police"), r, result.Callback());
    return result.Get();
  }

  ExamplePartnership p;
  FakeHolderClients holders;
  StatisticsRuns runs;
};

TEST_F(StatisticsFixture, EachHolderCountsUnderItsOwnDecisionAndAFreshRunId) {
  holders.AnswerStatistics("refuge", Honest(10));
  holders.AnswerStatistics("rape-crisis", Honest(20));
  auto r = Run(BySex());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->holders_included_size(), 2);
  std::string run_id;
  for (const char* h : {"refuge", "rape-crisis"}) {
    auto reqs = holders.StatisticsRequests(h);
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].decision().rule_id(), "monitoring-statistics");
    EXPECT_EQ(reqs[0].requester_org(), "police");
    EXPECT_EQ(reqs[0].run_id().size(), 16u);
    if (run_id.empty()) run_id = reqs[0].run_id();
    EXPECT_EQ(reqs[0].run_id(), run_id);  // one run id per run
  }
  // Q2 by sex: female 10 + 20 = 30 for all partners.
  const auto& t = r->tables(1);
  EXPECT_EQ(t.dimension(), "sex");
  EXPECT_EQ(t.rows(2).org(), "all");
  EXPECT_EQ(t.rows(2).cells(0).count(), 30u);
  // One entry per holder, each with the dimensions and its count.
  auto entries = p.log.EntriesOf("Statistics");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(r->audit_seq(), entries[0].seq());
  for (const auto& e : entries) {
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
    EXPECT_EQ(e.action(), accord::v1::ACTION_STATISTICS);
    EXPECT_THAT(e.fields_released(), ::testing::ElementsAre("dimension:sex"));
    EXPECT_THAT(e.detail(), HasSubstr("by quarter from 2026-04-01"));
  }
  // A second run gets another run id.
  ASSERT_TRUE(Run(BySex()).ok());
  EXPECT_NE(holders.StatisticsRequests("refuge")[1].run_id(), run_id);
}

TEST_F(StatisticsFixture, APartnersOwnFiguresArePartOfThePartnerships) {
  holders.AnswerStatistics("womens-centre", Honest(10));
  auto all = BySex();
  all.clear_holders();
  Result<accord::v1::StatisticsResponse> result;
  runs.Statistics(p.Org("womens-centre"), all, result.Callback());
  auto r = result.Get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(holders.StatisticsRequests("womens-centre").size(), 1u);
  EXPECT_THAT(r->holders_included(), ::testing::Contains("womens-centre"));
  // Partners whose agents did not answer are named, not silently dropped.
  EXPECT_GT(r->holders_missing_size(), 0);
}

TEST_F(StatisticsFixture, ALyingHoldersAnswerIsLeftOutWithTheReason) {
  holders.AnswerStatistics("refuge", Honest(10));
  auto lie = Honest(20);
  lie.mutable_periods(0)->mutable_counts(0)->set_count(500);
  holders.AnswerStatistics("rape-crisis", lie);
  auto r = Run(BySex());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->holders_included_size(), 1);
  EXPECT_EQ(r->holders_included(0), "refuge");
  ASSERT_EQ(r->holders_missing_size(), 1);
  EXPECT_EQ(r->holders_missing(0).holder(), "rape-crisis");
  EXPECT_THAT(r->holders_missing(0).detail(),
              HasSubstr("the counts by sex add up to 500 for 20 engagements"));
}

TEST_F(StatisticsFixture, AnAuditFailureReleasesNothing) {
  holders.AnswerStatistics("refuge", Honest(10));
  holders.AnswerStatistics("rape-crisis", Honest(20));
  p.log.FailNext(1);
  auto r = Run(BySex());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(StatisticsFixture, BadRequestsAreRefusedOnceAndAudited) {
  auto unknown = BySex();
  unknown.add_dimensions("shoe_size");
  auto r = Run(unknown);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("field dimensions[1]: 'shoe_size' is not a dimension"));

  auto no_period = BySex();
  no_period.clear_period();
  EXPECT_THAT(Run(no_period).status().message(), HasSubstr("field period"));

  auto backwards = BySex();
  backwards.mutable_range()->mutable_until()->set_seconds(kFrom - 1);
  EXPECT_THAT(Run(backwards).status().message(),
              HasSubstr("'from' must be before 'until'"));

  auto not_agreed = BySex();
  not_agreed.set_purpose("safeguarding");
  r = Run(not_agreed);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);

  // Nobody was asked; every refusal is one denial entry.
  EXPECT_TRUE(holders.StatisticsRequests("refuge").empty());
  auto entries = p.log.EntriesOf("Statistics");
  ASSERT_EQ(entries.size(), 4u);
  for (const auto& e : entries)
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
}

}  // namespace
}  // namespace accord::gateway
