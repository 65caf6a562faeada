// The auditor API at the gateway, over a real SQLite audit log: who may read
// under the gateway's pipeline, that every read is itself recorded, paging,
// and bounded exports.
#include "gateway/auditor_access.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "audit/test_util.h"
#include "gateway/test_fakes.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;
using testing::ExamplePartnership;
using testing::Result;

struct AuditorApiTest : ::testing::Test {
  AuditorApiTest() : clock(testing::ExampleNow()) {
    audit::SqliteAuditLogOptions o;
    o.db_path = audit::testing::TempDbPath(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    o.signer = audit::testing::TestSigner();
    o.clock = &clock;
    auto opened = audit::OpenSqliteAuditLog(o);
    if (!opened.ok()) std::abort();
    log = std::move(*opened);
    p = std::make_unique<ExamplePartnership>(PipelineOptions{},
                                             audit::RefusalBudget{}, log.get());
    access = std::make_unique<GatewayAuditorAccess>(p->pipeline.get());
    auditor::AuditorApiOptions options;
    options.max_concurrent_exports = 1;
    api = std::make_unique<auditor::AuditorApi>(log.get(), access.get(),
                                                options);
  }
  ~AuditorApiTest() override {
    api.reset();
    access.reset();
    p.reset();
  }
  Caller Dpo() const { return p->As(PrincipalKind::kAuditor, "dpo"); }
  std::vector<accord::v1::AuditEntry> All() {
    Result<accord::v1::AuditSearchResponse> r;
    accord::v1::AuditSearchRequest req;
    req.set_page_size(1000);
    api->Search(Dpo(), req, r.Callback());
    auto got = r.Get();
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? std::vector<accord::v1::AuditEntry>(
                          got->entries().begin(), got->entries().end())
                    : std::vector<accord::v1::AuditEntry>();
  }

  FakeClock clock;
  std::unique_ptr<audit::AuditLog> log;
  std::unique_ptr<ExamplePartnership> p;
  std::unique_ptr<GatewayAuditorAccess> access;
  std::unique_ptr<auditor::AuditorApi> api;
};

TEST_F(AuditorApiTest, AnOrganisationCannotReadTheLogAndTheAttemptIsRecorded) {
  Result<accord::v1::AuditSearchResponse> r;
  accord::v1::AuditSearchRequest req;
  api->Search(p->Org("police"), req, r.Callback());
  EXPECT_EQ(r.Get().status().code(), absl::StatusCode::kPermissionDenied);
  auto entries = All();
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0].method(), "AuditSearch");
  EXPECT_EQ(entries[0].caller_org(), "police");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_DENY);
}

TEST_F(AuditorApiTest, EveryReadIsRecordedBeforeItIsAnswered) {
  auto entries = All();
  // The search itself is the first entry, and it sees itself.
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].method(), "AuditSearch");
  EXPECT_EQ(entries[0].caller(), "spiffe://northdale.accord/auditor/dpo");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_ALLOW);
}

TEST_F(AuditorApiTest, SubjectAccessReportsArePaged) {
  const std::string token(64, 'a');
  for (int i = 0; i < 5; ++i) {
    auto e = audit::testing::QueryEntry("police", "pc-1", "safeguarding", token);
    ASSERT_TRUE(log->AppendAndWait(e).ok());
  }
  accord::v1::SubjectAccessRequest req;
  auto* t = req.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value(token);
  req.set_page_size(2);
  int seen = 0, pages = 0;
  do {
    Result<accord::v1::SubjectAccessResponse> r;
    api->SubjectAccessReport(Dpo(), req, r.Callback());
    auto page = r.Get();
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->disclosures_size(), 2);
    EXPECT_FALSE(page->report().empty());
    seen += page->disclosures_size();
    ++pages;
    req.set_page_token(page->next_page_token());
  } while (!req.page_token().empty());
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(pages, 3);
}

TEST_F(AuditorApiTest, ReviewingAnUnknownEntryIsRefusedAndRecorded) {
  Result<accord::v1::MarkReviewedResponse> r;
  accord::v1::MarkReviewedRequest req;
  req.set_seq(4242);
  req.set_note("checked with the duty inspector");
  api->MarkReviewed(Dpo(), req, r.Callback());
  EXPECT_EQ(r.Get().status().code(), absl::StatusCode::kNotFound);
  // The access to review, then its refusal: the entry does not exist.
  auto entries = All();
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0].method(), "MarkReviewed/authorise");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_ALLOW);
  EXPECT_EQ(entries[1].method(), "MarkReviewed");
  EXPECT_EQ(entries[1].detail(), "seq 4242");
  EXPECT_EQ(entries[1].decision(), accord::v1::AUDIT_DECISION_DENY);
}

// A sink that takes chunks until told to stop, optionally holding the
// first one until released.
class Sink : public auditor::AuditorApi::ExportSink {
 public:
  explicit Sink(bool hold = false) : hold_(hold) {}
  absl::Status Write(const accord::v1::ExportChunk& chunk) override {
    data_ += chunk.data();
    if (hold_ && !writing_.HasBeenNotified()) {
      writing_.Notify();
      release_.WaitForNotification();
    }
    return absl::OkStatus();
  }
  absl::Notification writing_, release_;
  std::string data_;

 private:
  bool hold_;
};

TEST_F(AuditorApiTest, AnUnknownExportFormatIsRefusedNamingTheFormats) {
  accord::v1::ExportRequest req;
  req.set_format(static_cast<accord::v1::ExportFormat>(7));
  Sink sink;
  Result<bool> r;
  api->Export(Dpo(), req, &sink, [&](absl::Status s) {
    r.Callback()(s.ok() ? absl::StatusOr<bool>(true) : s);
  });
  auto got = r.Get();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("EXPORT_FORMAT_JSONL"));
  EXPECT_TRUE(sink.data_.empty());
}

TEST_F(AuditorApiTest, ExportsBeyondThePoolAreRefusedUntilOneFinishes) {
  ASSERT_TRUE(
      log->AppendAndWait(audit::testing::QueryEntry("police", "pc-1", "s")).ok());
  accord::v1::ExportRequest req;
  req.set_format(accord::v1::EXPORT_FORMAT_JSONL);
  Sink held(/*hold=*/true);
  Result<bool> first;
  api->Export(Dpo(), req, &held, [&](absl::Status s) {
    first.Callback()(s.ok() ? absl::StatusOr<bool>(true) : s);
  });
  ASSERT_TRUE(held.writing_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  Sink second_sink;
  Result<bool> second;
  api->Export(Dpo(), req, &second_sink, [&](absl::Status s) {
    second.Callback()(s.ok() ? absl::StatusOr<bool>(true) : s);
  });
  auto refused = second.Get();
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  held.release_.Notify();
  EXPECT_TRUE(first.Get().ok());
  EXPECT_THAT(held.data_, HasSubstr("\"method\":\"Query\""));
  Sink third_sink;
  Result<bool> third;
  api->Export(Dpo(), req, &third_sink, [&](absl::Status s) {
    third.Callback()(s.ok() ? absl::StatusOr<bool>(true) : s);
  });
  EXPECT_TRUE(third.Get().ok());
}

}  // namespace
}  // namespace accord::gateway
