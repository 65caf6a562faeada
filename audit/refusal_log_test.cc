#include "audit/refusal_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "absl/strings/str_cat.h"

#include "audit/memory_audit_log.h"
#include "runtime/clock.h"

namespace accord::audit {
namespace {

using ::testing::HasSubstr;
using Stage = RefusalLog::Stage;

accord::v1::AuditEntry Refusal(const std::string& caller,
                               const std::string& method,
                               const std::string& reason) {
  accord::v1::AuditEntry e;
  e.set_caller(caller);
  e.set_method(method);
  e.set_request_id("req-1");
  e.set_deny_reason(reason);
  return e;
}

struct RefusalLogTest : ::testing::Test {
  RefusalLogTest() : clock(absl::FromUnixSeconds(1780000000)) {}
  // Records one refusal; whether it was written (vs counted).
  bool Record(RefusalLog& log, const std::string& caller,
              const std::string& method = "Query",
              absl::StatusCode code = absl::StatusCode::kPermissionDenied,
              Stage stage = Stage::kBeforeAdmission) {
    bool written = false, called = false;
    log.Record(Refusal(caller, method, "certificate is revoked"), code, stage,
               [&](absl::StatusOr<std::optional<uint64_t>> r) {
                 ASSERT_TRUE(r.ok());
                 written = r->has_value();
                 called = true;
               });
    EXPECT_TRUE(called);
    return written;
  }
  // Refusals the log's entries account for, by caller.
  std::map<std::string, uint64_t> Accounted() {
    std::map<std::string, uint64_t> out;
    for (const auto& e : mem.entries())
      out[e.caller()] += e.refusals_summarised() > 0 ? e.refusals_summarised() : 1;
    return out;
  }

  FakeClock clock;
  testing::MemoryAuditLog mem;
};

TEST_F(RefusalLogTest, WrittenInFullWhileTheBudgetLastsThenCounted) {
  RefusalBudget budget;
  budget.summary_interval = absl::Hours(1);  // the test flushes
  RefusalLog log(&mem, &clock, budget);
  int written = 0;
  for (int i = 0; i < 100; ++i) written += Record(log, "spiffe://p/org/a");
  EXPECT_EQ(written, 5);  // the per-key burst
  EXPECT_EQ(log.written(), 5u);
  EXPECT_EQ(log.counted(), 95u);
  EXPECT_EQ(mem.entries().size(), 5u);
  for (const auto& e : mem.entries()) {
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
    EXPECT_EQ(e.request_id(), "req-1");  // written in full
  }
  clock.Advance(absl::Seconds(3));
  log.Flush();
  auto entries = mem.entries();
  ASSERT_EQ(entries.size(), 6u);
  const auto& summary = entries.back();
  EXPECT_EQ(summary.refusals_summarised(), 95u);
  EXPECT_EQ(summary.method(), "Query");
  EXPECT_EQ(summary.caller(), "spiffe://p/org/a");
  EXPECT_TRUE(summary.request_id().empty());
  EXPECT_EQ(summary.deny_reason(), "certificate is revoked");
  EXPECT_TRUE(summary.has_summarised_since());
  EXPECT_THAT(summary.detail(), HasSubstr("95 refusals of Query"));
  EXPECT_EQ(Accounted()["spiffe://p/org/a"], 100u);
  // Nothing left to summarise.
  log.Flush();
  EXPECT_EQ(mem.entries().size(), 6u);
}

TEST_F(RefusalLogTest, OneCallersFloodLeavesOtherCallersRefusalsWritten) {
  RefusalBudget budget;
  budget.summary_interval = absl::Hours(1);
  RefusalLog log(&mem, &clock, budget);
  for (int i = 0; i < 1000; ++i) Record(log, "spiffe://p/org/flood");
  EXPECT_TRUE(Record(log, "spiffe://p/org/other"));
  EXPECT_TRUE(Record(log, "spiffe://p/org/flood", "SendReferral"));
  EXPECT_TRUE(Record(log, "spiffe://p/org/flood", "Query",
                     absl::StatusCode::kResourceExhausted));
  log.Flush();
  auto accounted = Accounted();
  EXPECT_EQ(accounted["spiffe://p/org/flood"], 1002u);
  EXPECT_EQ(accounted["spiffe://p/org/other"], 1u);
}

TEST_F(RefusalLogTest, TheTotalBudgetBoundsManyCallersAtOnce) {
  RefusalBudget budget;
  budget.summary_interval = absl::Hours(1);
  RefusalLog log(&mem, &clock, budget);
  for (int c = 0; c < 500; ++c) Record(log, absl::StrCat("spiffe://p/org/", c));
  EXPECT_EQ(log.written(), 100u);  // the total burst
  log.Flush();
  uint64_t total = 0;
  for (auto& [caller, n] : Accounted()) total += n;
  EXPECT_EQ(total, 500u);
  EXPECT_LE(mem.entries().size(), 600u);
}

TEST_F(RefusalLogTest, TheBudgetRefillsWithTime) {
  RefusalBudget budget;
  budget.summary_interval = absl::Hours(1);
  RefusalLog log(&mem, &clock, budget);
  for (int i = 0; i < 10; ++i) Record(log, "spiffe://p/org/a");
  EXPECT_FALSE(Record(log, "spiffe://p/org/a"));
  clock.Advance(absl::Seconds(2));  // 1/s per key
  EXPECT_TRUE(Record(log, "spiffe://p/org/a"));
  EXPECT_TRUE(Record(log, "spiffe://p/org/a"));
  EXPECT_FALSE(Record(log, "spiffe://p/org/a"));
}

TEST_F(RefusalLogTest, AdmittedCallsHaveTheirOwnGenerousBudget) {
  RefusalBudget budget;
  budget.summary_interval = absl::Hours(1);
  RefusalLog log(&mem, &clock, budget);
  for (int i = 0; i < 50; ++i) Record(log, "spiffe://p/org/a");
  int written = 0;
  for (int i = 0; i < 50; ++i) {
    written += Record(log, "spiffe://p/org/a", "Query",
                      absl::StatusCode::kInvalidArgument,
                      Stage::kAfterAdmission);
  }
  EXPECT_EQ(written, 50);
}

TEST_F(RefusalLogTest, StopWritesWhatIsStillCounted) {
  {
    RefusalLog log(&mem, &clock, {});
    for (int i = 0; i < 20; ++i) Record(log, "spiffe://p/org/a");
  }
  EXPECT_EQ(Accounted()["spiffe://p/org/a"], 20u);
}

TEST_F(RefusalLogTest, TheSummaryThreadWritesEachInterval) {
  RefusalBudget budget;
  budget.summary_interval = absl::Milliseconds(20);
  RefusalLog log(&mem, &clock, budget);
  for (int i = 0; i < 20; ++i) Record(log, "spiffe://p/org/a");
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (Accounted()["spiffe://p/org/a"] < 20 && absl::Now() < give_up)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(Accounted()["spiffe://p/org/a"], 20u);
}

TEST_F(RefusalLogTest, AWrittenRefusalIsReportedOnlyOnceDurable) {
  RefusalLog log(&mem, &clock, {});
  mem.Hold();
  bool called = false;
  log.Record(Refusal("spiffe://p/org/a", "Query", "no"),
             absl::StatusCode::kPermissionDenied, Stage::kBeforeAdmission,
             [&](absl::StatusOr<std::optional<uint64_t>>) { called = true; });
  EXPECT_FALSE(called);
  mem.Commit();
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace accord::audit
