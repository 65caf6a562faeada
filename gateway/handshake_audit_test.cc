#include "gateway/handshake_audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/sqlite_audit_log.h"
#include "audit/test_util.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class HandshakeAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    audit::SqliteAuditLogOptions o;
    o.db_path = audit::testing::TempDbPath("handshake");
    o.signer = audit::testing::TestSigner();
    o.clock = &clock_;
    auto log = audit::OpenSqliteAuditLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  // Every tls-handshake entry, once all appends so far are durable.
  std::vector<accord::v1::AuditEntry> HandshakeEntries() {
    accord::v1::AuditEntry sentinel;
    sentinel.set_method("sentinel");
    EXPECT_TRUE(log_->AppendAndWait(sentinel).ok());
    audit::PageRequest page;
    page.page_size = 1000;
    auto found = log_->Search({}, page);
    EXPECT_TRUE(found.ok()) << found.status();
    std::vector<accord::v1::AuditEntry> out;
    for (auto& e : found->entries) {
      if (e.method() == kHandshakeMethod) out.push_back(std::move(e));
    }
    return out;
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  std::unique_ptr<audit::AuditLog> log_;
};

HandshakeRefusal Expired() {
  HandshakeRefusal r;
  r.reason = "certificate expired at 2026-11-01T00:00:00Z";
  r.claimed_identity = "spiffe://t.accord/org/police";
  r.claimed_subject = "CN=police,OU=org,O=t.accord";
  r.fingerprint = std::string(64, 'a');
  return r;
}

TEST_F(HandshakeAuditTest, EntryRecordsTheClaimAsUnverified) {
  HandshakeAudit audit(log_.get(), &clock_, {}, "test");
  audit.Record(Expired());
  HandshakeRefusal anonymous;
  anonymous.reason = "unknown CA: certificate not issued by the partnership CA";
  anonymous.fingerprint = std::string(64, 'b');
  audit.Record(anonymous);
  HandshakeRefusal unparseable;
  unparseable.reason = "the presented certificate cannot be parsed";
  audit.Record(unparseable);

  const auto entries = HandshakeEntries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].caller(), "unverified:spiffe://t.accord/org/police");
  EXPECT_EQ(entries[0].caller_org(), "");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(entries[0].deny_reason(), Expired().reason);
  EXPECT_EQ(entries[0].detail(),
            absl::StrCat("certificate presented, unverified: subject "
                         "CN=police,OU=org,O=t.accord; sha256 ",
                         std::string(64, 'a')));
  EXPECT_EQ(entries[1].caller(), absl::StrCat("sha256:", std::string(64, 'b')));
  EXPECT_EQ(entries[2].caller(), "unknown");
  EXPECT_EQ(entries[2].deny_reason(), unparseable.reason);
}

TEST_F(HandshakeAuditTest, FloodIsBoundedAndTheLeftOutAreCounted) {
  HandshakeAudit audit(log_.get(), &clock_, {/*per_second=*/5, /*burst=*/20},
                       "test");
  for (int i = 0; i < 100; ++i) audit.Record(Expired());
  clock_.Advance(absl::Seconds(1));
  audit.Record(Expired());
  auto entries = HandshakeEntries();
  ASSERT_EQ(entries.size(), 21u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_THAT(entries[i].detail(), Not(HasSubstr("not audited")));
  }
  EXPECT_THAT(entries[20].detail(),
              HasSubstr("; 80 earlier handshake refusals not audited (rate "
                        "limit)"));

  // Once stopped (the server is going), nothing more is written.
  audit.Stop();
  clock_.Advance(absl::Seconds(10));
  audit.Record(Expired());
  EXPECT_EQ(HandshakeEntries().size(), 21u);
}

}  // namespace
}  // namespace accord::gateway
