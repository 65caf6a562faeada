#include "gateway/stream_audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "audit/sqlite_audit_log.h"
#include "audit/test_util.h"
#include "runtime/clock.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;

class StreamAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    audit::SqliteAuditLogOptions o;
    o.db_path = audit::testing::TempDbPath("stream-audit");
    o.signer = audit::testing::TestSigner();
    o.clock = &clock_;
    auto log = audit::OpenSqliteAuditLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  // Every http2-connection entry, once all appends so far are durable.
  std::vector<accord::v1::AuditEntry> Entries() {
    accord::v1::AuditEntry sentinel;
    sentinel.set_method("sentinel");
    EXPECT_TRUE(log_->AppendAndWait(sentinel).ok());
    audit::PageRequest page;
    page.page_size = 1000;
    auto found = log_->Search({}, page);
    EXPECT_TRUE(found.ok()) << found.status();
    std::vector<accord::v1::AuditEntry> out;
    for (auto& e : found->entries) {
      if (e.method() == kHttp2ConnectionMethod) out.push_back(std::move(e));
    }
    return out;
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  std::unique_ptr<audit::AuditLog> log_;
};

TEST_F(StreamAuditTest, ClosureNamesTheOrganisationAndWhy) {
  StreamAudit audit(log_.get(), "t.accord", "test");
  audit.RecordClosure({"spiffe://t.accord/org/police", "ipv4:127.0.0.1:4242",
                       "201 streams reset by the client in 0.04 s",
                       std::string(64, 'c')});
  // An identity of another trust domain, or not an organisation's, is
  // recorded as presented but names no organisation.
  audit.RecordClosure(
      {"spiffe://other.accord/org/police", "ipv4:10.0.0.1:1", "too many", ""});
  audit.RecordClosure(
      {"spiffe://t.accord/gateway", "ipv4:10.0.0.2:1", "x", ""});
  const auto entries = Entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].caller(), "spiffe://t.accord/org/police");
  EXPECT_EQ(entries[0].caller_org(), "police");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(entries[0].deny_reason(),
            "connection closed: 201 streams reset by the client in 0.04 s");
  EXPECT_EQ(entries[0].detail(),
            absl::StrCat("from ipv4:127.0.0.1:4242; certificate sha256 ",
                         std::string(64, 'c')));
  EXPECT_EQ(entries[1].caller(), "spiffe://other.accord/org/police");
  EXPECT_EQ(entries[1].caller_org(), "");
  EXPECT_EQ(entries[2].caller_org(), "");
}

TEST_F(StreamAuditTest, OnlySummariesWithAClosureAreAudited) {
  StreamAudit audit(log_.get(), "t.accord", "test");
  audit.RecordSummary(
      {"spiffe://t.accord/org/police", 3, 0, absl::Seconds(10)});
  audit.RecordSummary(
      {"spiffe://t.accord/org/refuge", 5230, 12, absl::Seconds(10)});
  const auto entries = Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].caller_org(), "refuge");
  EXPECT_EQ(entries[0].deny_reason(), "12 connections closed for stream churn");
  EXPECT_THAT(entries[0].detail(),
              HasSubstr("5230 streams reset by the client and 12 connections "
                        "closed in 10.0 s"));
}

}  // namespace
}  // namespace accord::gateway
