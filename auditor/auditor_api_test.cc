#include "auditor/auditor_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "audit/entry.h"
#include "audit/test_util.h"
#include "audit/verify.h"

namespace accord::auditor {
namespace {

using ::testing::HasSubstr;

// Auditors may read; everyone else is refused. Each decision is an entry in
// the log itself, as the gateway and the agents record theirs.
class TestAccess final : public AuditorAccess {
 public:
  explicit TestAccess(audit::AuditLog* log) : log_(log) {}
  void AuthoriseRead(const Caller& caller, const std::string& method,
                     const std::string& detail,
                     std::function<void(absl::Status)> done) override {
    accord::v1::AuditEntry e;
    e.set_method(method);
    e.set_detail(detail);
    e.set_caller(caller.principal.ok() ? caller.principal->uri : "");
    absl::Status verdict = caller.principal.ok() && caller.principal->kind ==
                                                        PrincipalKind::kAuditor
                               ? absl::OkStatus()
                               : absl::PermissionDeniedError("not an auditor");
    e.set_decision(verdict.ok() ? accord::v1::AUDIT_DECISION_ALLOW
                                : accord::v1::AUDIT_DECISION_DENY);
    if (fail_) {
      return done(absl::UnavailableError("the log could not record the read"));
    }
    log_->Append(std::move(e), [verdict, done](absl::StatusOr<uint64_t> seq) {
      done(seq.ok() ? verdict : seq.status());
    });
  }
  void RefuseRead(const Caller& caller, const std::string& method,
                  const std::string& detail, absl::Status status,
                  std::function<void(absl::Status)> done) override {
    accord::v1::AuditEntry e;
    e.set_method(method);
    e.set_detail(detail);
    e.set_caller(caller.principal.ok() ? caller.principal->uri : "");
    e.set_decision(accord::v1::AUDIT_DECISION_DENY);
    e.set_deny_reason(std::string(status.message()));
    log_->Append(std::move(e), [status, done](absl::StatusOr<uint64_t> seq) {
      done(seq.ok() ? status : seq.status());
    });
  }
  audit::Reviewer ReviewerOf(const Caller& caller) const override {
    audit::Reviewer r;
    r.caller = caller.principal->uri;
    r.agent_org = "refuge";
    return r;
  }
  bool fail_ = false;

 private:
  audit::AuditLog* log_;
};

template <typename T>
absl::StatusOr<T> Wait(const std::function<void(Done<T>)>& call) {
  absl::Notification n;
  absl::StatusOr<T> out = absl::UnknownError("not called");
  call([&](absl::StatusOr<T> r) {
    out = std::move(r);
    n.Notify();
  });
  n.WaitForNotification();
  return out;
}

class AuditorApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    audit::SqliteAuditLogOptions o;
    o.db_path = audit::testing::TempDbPath(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    o.signer = audit::testing::TestSigner();
    o.clock = &clock_;
    auto log = audit::OpenSqliteAuditLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    access_ = std::make_unique<TestAccess>(log_.get());
    api_ = std::make_unique<AuditorApi>(log_.get(), access_.get());
    auditor_.principal = ParseSpiffeId("spiffe://p/auditor/dpo");
    stranger_.principal = ParseSpiffeId("spiffe://p/org/police");
    accord::v1::AuditEntry flagged =
        audit::testing::QueryEntry("police", "pc-1", "safeguarding", "aa");
    flagged.set_flag_for_review(true);
    ASSERT_TRUE(log_->AppendAndWait(flagged).ok());
  }

  absl::StatusOr<accord::v1::AuditSearchResponse> Search(const Caller& c) {
    const accord::v1::AuditSearchRequest req;  // lives until answered
    return Wait<accord::v1::AuditSearchResponse>(
        [&](auto done) { api_->Search(c, req, done); });
  }

  FakeClock clock_{absl::FromUnixSeconds(1767225600)};
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<TestAccess> access_;
  std::unique_ptr<AuditorApi> api_;
  Caller auditor_, stranger_;
};

TEST_F(AuditorApiTest, EveryReadIsRecordedBeforeItsBodyRuns) {
  auto page = Search(auditor_);
  ASSERT_TRUE(page.ok()) << page.status();
  // The search sees its own access: it was durable before the body ran.
  ASSERT_EQ(page->entries_size(), 2);
  EXPECT_EQ(page->entries(1).method(), "AuditSearch");
  EXPECT_EQ(page->entries(1).decision(), accord::v1::AUDIT_DECISION_ALLOW);
}

TEST_F(AuditorApiTest, RefusedReaderReadsNothingAndTheRefusalIsRecorded) {
  auto page = Search(stranger_);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(page.status().message(), HasSubstr("not an auditor"));
  auto last = log_->GetEntry(log_->Size() - 1);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->method(), "AuditSearch");
  EXPECT_EQ(last->decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(last->caller(), "spiffe://p/org/police");
}

TEST_F(AuditorApiTest, NothingIsReadWhenTheAccessCannotBeRecorded) {
  access_->fail_ = true;
  const uint64_t before = log_->Size();
  auto page = Search(auditor_);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kUnavailable);
  auto head = Wait<accord::v1::SignedTreeHead>(
      [&](auto done) { api_->GetTreeHead(auditor_, done); });
  EXPECT_EQ(head.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(log_->Size(), before);
}

TEST_F(AuditorApiTest, ReviewsNameTheReviewerAndTheLogsAgent) {
  accord::v1::MarkReviewedRequest req;
  req.set_seq(0);
  req.set_note("justified: risk of serious harm");
  auto reviewed = Wait<accord::v1::MarkReviewedResponse>(
      [&](auto done) { api_->MarkReviewed(auditor_, req, done); });
  ASSERT_TRUE(reviewed.ok()) << reviewed.status();
  auto entry = log_->GetEntry(reviewed->audit_seq());
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->method(), "MarkReviewed");
  EXPECT_EQ(entry->reviews_seq(), 0u);
  EXPECT_EQ(entry->caller(), "spiffe://p/auditor/dpo");
  EXPECT_EQ(entry->agent_org(), "refuge");
  // Refused before anything is marked.
  req.set_note("again");
  auto refused = Wait<accord::v1::MarkReviewedResponse>(
      [&](auto done) { api_->MarkReviewed(stranger_, req, done); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AuditorApiTest, ProofsAndExportsVerifyOffline) {
  accord::v1::InclusionProofRequest proof_req;  // lives until answered
  proof_req.set_leaf_index(0);
  auto proof = Wait<accord::v1::InclusionProofResponse>(
      [&](auto done) { api_->GetInclusionProof(auditor_, proof_req, done); });
  ASSERT_TRUE(proof.ok()) << proof.status();
  auto signer = audit::testing::TestSigner();
  auto key = audit::testing::VerifierFor(*signer);
  EXPECT_TRUE(audit::VerifyInclusionProof(proof->proof(),
                                          audit::EncodeLeaf(proof->entry()),
                                          proof->tree_head(), *key)
                  .ok());

  ASSERT_TRUE(log_->SignTreeHeadNow().ok());
  struct Collect : AuditorApi::ExportSink {
    absl::Status Write(const accord::v1::ExportChunk& chunk) override {
      text += chunk.data();
      return absl::OkStatus();
    }
    std::string text;
  } sink;
  accord::v1::ExportRequest req;
  req.set_format(accord::v1::EXPORT_FORMAT_JSONL);
  absl::Notification exported;
  absl::Status outcome;
  api_->Export(auditor_, req, &sink, [&](absl::Status s) {
    outcome = s;
    exported.Notify();
  });
  exported.WaitForNotification();
  ASSERT_TRUE(outcome.ok()) << outcome;
  const std::string& text = sink.text;
  auto lines = audit::LinesFromString(text);
  auto summary = audit::VerifyJsonlExport(*lines, *key);
  ASSERT_TRUE(summary.ok()) << summary.status();
  // Up to the head signed before the export; the export's own access entry
  // came after it.
  EXPECT_EQ(summary->to_seq, log_->Size() - 1);
}

}  // namespace
}  // namespace accord::auditor
