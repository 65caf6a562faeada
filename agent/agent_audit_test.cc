// The agent's own audit log: each kind of event becomes one entry naming
// this agent, with identities, names and ids but never a record's value; a
// disclosure is released only once its entry is durable, and not at all
// when it cannot be recorded. Real store, policy and SQLite audit log in a
// temporary directory.

#include "agent/agent_audit.h"

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "agent/test_util.h"
#include "audit/entry.h"
#include "audit/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::agent {
namespace {

using accord::v1::AuditEntry;
using testing::AgentFixture;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// An audit log whose every write fails, as when its disk is full.
class FailingAuditLog final : public audit::AuditLog {
 public:
  void Append(AuditEntry, DurableCallback on_durable) override {
    on_durable(absl::InternalError("disk I/O error"));
  }
  absl::StatusOr<accord::v1::SignedTreeHead> LatestTreeHead() override {
    return Broken();
  }
  absl::StatusOr<accord::v1::SignedTreeHead> SignTreeHeadNow() override {
    return Broken();
  }
  absl::StatusOr<accord::v1::SignedTreeHead> TreeHeadAt(uint64_t) override {
    return Broken();
  }
  absl::StatusOr<AuditEntry> GetEntry(uint64_t) override { return Broken(); }
  absl::StatusOr<std::string> GetLeaf(uint64_t) override { return Broken(); }
  absl::StatusOr<audit::EntryPage> Search(const audit::AuditQuery&,
                                          const audit::PageRequest&) override {
    return Broken();
  }
  absl::StatusOr<audit::EntryPage> SubjectAccess(
      const std::vector<accord::v1::SubjectToken>&,
      const audit::PageRequest&) override {
    return Broken();
  }
  absl::StatusOr<audit::EntryPage> ReviewQueue(
      const audit::PageRequest&) override {
    return Broken();
  }
  void MarkReviewed(uint64_t, const audit::Reviewer&, std::string,
                    DurableCallback on_durable) override {
    on_durable(Broken());
  }
  absl::StatusOr<accord::v1::InclusionProof> InclusionProof(uint64_t,
                                                            uint64_t) override {
    return Broken();
  }
  absl::StatusOr<accord::v1::ConsistencyProof> ConsistencyProof(
      uint64_t, uint64_t) override {
    return Broken();
  }
  absl::Status Export(uint64_t, uint64_t, audit::ExportFormat,
                      const ExportSink&) override {
    return Broken();
  }
  uint64_t Size() override { return 0; }

 private:
  static absl::Status Broken() { return absl::InternalError("disk I/O error"); }
};

Caller CallerAs(const std::string& uri, const std::string& user = "") {
  Caller c;
  c.principal = ParseSpiffeId(uri);
  c.actor.set_user_id(user);
  return c;
}

class AgentAuditTest : public ::testing::Test {
 protected:
  AgentAuditTest() : f_("agent_audit") {}

  void SetUp() override {
    audit::SqliteAuditLogOptions o;
    o.db_path = f_.dir + "/agent-audit.db";
    o.signer = audit::testing::TestSigner(7);
    o.clock = &f_.clock;
    auto log = audit::OpenSqliteAuditLog(o);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    audit_ = NewAgentAuditLog("vol-a", f_.partnership, log_.get(),
                              f_.store.get(), "test-agent");

    auto up = f_.local->UpsertSubject(testing::ZoeSubject());
    ASSERT_TRUE(up.ok()) << up.status();
    tokens_.assign(up->tokens().begin(), up->tokens().end());
    for (auto [id, category] :
         {std::pair{"R-needs", accord::v1::DATA_CATEGORY_NEEDS},
          std::pair{"R-risk", accord::v1::DATA_CATEGORY_RISK}}) {
      accord::v1::UpsertRecordRequest r;
      auto* rec = r.mutable_record();
      rec->set_local_id(id);
      rec->set_subject_local_id("S-1");
      rec->set_category(category);
      rec->set_provenance(accord::v1::PROVENANCE_FACT);
      rec->set_text("SECRET-RECORD-TEXT about her");
      ASSERT_TRUE(f_.local->UpsertRecord(r).ok());
    }
  }

  std::string Consent() {
    accord::v1::RecordConsentRequest req;
    auto* c = req.mutable_consent();
    c->set_subject_local_id("S-1");
    c->add_granted_to_orgs("vol-b");
    c->add_purposes("support");
    c->add_categories(accord::v1::DATA_CATEGORY_IDENTITY);
    c->add_categories(accord::v1::DATA_CATEGORY_NEEDS);
    *c->mutable_given_at() = ToProtoTime(f_.clock.Now() - absl::Hours(1));
    c->set_method(accord::v1::CONSENT_METHOD_WRITTEN);
    c->set_recorded_by("ISVA Isla Vance");
    auto resp = f_.local->RecordConsent(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->consent_id() : "";
  }

  // A request as the gateway sends it, with the decision of the same
  // agreements unless `decision` forges one.
  accord::v1::DiscloseRequest Request(
      const accord::v1::Decision* decision = nullptr) {
    accord::v1::DiscloseRequest r;
    r.set_request_id("req-7");
    r.set_requester_org("vol-b");
    r.set_purpose("support");
    r.mutable_actor()->set_user_id("worker-3");
    for (const auto& t : tokens_) *r.add_subjects() = t;
    accord::v1::DecisionRequest d;
    d.set_requester_org("vol-b");
    d.set_holder_org("vol-a");
    d.set_action(accord::v1::ACTION_QUERY);
    d.set_purpose("support");
    *d.mutable_at() = ToProtoTime(f_.clock.Now());
    *r.mutable_decision() =
        decision != nullptr ? *decision : f_.engine->DecideProto(d);
    return r;
  }

  // Discloses and records, as the holder service does; the released answer.
  absl::StatusOr<accord::v1::DiscloseResponse> Disclose(
      const accord::v1::DiscloseRequest& r, AgentAudit* audit = nullptr) {
    std::vector<std::string> ids;
    auto answer = f_.discloser->Disclose(r, &ids);
    absl::Notification released;
    absl::StatusOr<accord::v1::DiscloseResponse> out;
    (audit != nullptr ? audit : audit_.get())
        ->Disclosure(r, std::move(answer), std::move(ids),
                     [&](absl::StatusOr<accord::v1::DiscloseResponse> a) {
                       out = std::move(a);
                       released.Notify();
                     });
    released.WaitForNotification();
    return out;
  }

  AuditEntry Last() {
    auto e = log_->GetEntry(log_->Size() - 1);
    EXPECT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->agent_org(), "vol-a");
    // What the log holds of it, byte for byte, carries no record value.
    auto leaf = log_->GetLeaf(e->seq());
    EXPECT_FALSE(absl::StrContains(*leaf, "SECRET-RECORD-TEXT"));
    EXPECT_FALSE(absl::StrContains(*leaf, "Zoë"));
    return *e;
  }

  AgentFixture f_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<AgentAudit> audit_;
  std::vector<accord::v1::SubjectToken> tokens_;
  const Caller self_ = CallerAs("spiffe://test.accord/org/vol-a", "dpo-ann");
};

TEST_F(AgentAuditTest, DisclosureRecordsWhatWasReleasedAndIsThenReleased) {
  Consent();
  auto answer = Disclose(Request());
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->status(), accord::v1::HOLDER_STATUS_ANSWERED);
  const AuditEntry e = Last();
  EXPECT_EQ(e.method(), "Disclose");
  EXPECT_EQ(e.caller(), "spiffe://test.accord/gateway");
  EXPECT_EQ(e.caller_org(), "vol-b");  // the requester
  EXPECT_EQ(e.holder(), "vol-a");
  EXPECT_EQ(e.request_id(), "req-7");
  EXPECT_EQ(e.actor().user_id(), "worker-3");
  EXPECT_EQ(e.rule_id(), "support-query");
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
  EXPECT_EQ(e.detail(), "HOLDER_STATUS_ANSWERED");
  // Field names as the gateway records them, then the records' categories;
  // the holder's own record ids; the tokens the request named.
  // (The postcode is CONTACT, which her consent does not cover: withheld,
  // so not recorded as released.)
  EXPECT_THAT(e.fields_released(),
              ElementsAre("date_of_birth", "family_name", "given_name",
                          "record:DATA_CATEGORY_NEEDS"));
  EXPECT_EQ(e.record_count(), 1u);
  EXPECT_THAT(e.record_ids(), ElementsAre("R-needs"));
  EXPECT_EQ(e.subjects_size(), static_cast<int>(tokens_.size()));
}

TEST_F(AgentAuditTest, RefusalsByTheAgentsOwnChecksAreRecorded) {
  // No consent: the consent check refuses.
  auto answer = Disclose(Request());
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->status(), accord::v1::HOLDER_STATUS_REFUSED);
  AuditEntry e = Last();
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_THAT(e.deny_reason(), HasSubstr("no current consent"));
  EXPECT_EQ(e.fields_released_size(), 0);

  // A gateway decision its own agreements do not make: the re-check refuses.
  Consent();
  accord::v1::Decision forged = Request().decision();
  forged.set_rule_id("police-risk");
  answer = Disclose(Request(&forged));
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->status(), accord::v1::HOLDER_STATUS_REFUSED);
  e = Last();
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_THAT(e.deny_reason(), HasSubstr("differs from this holder's"));
}

TEST_F(AgentAuditTest, NothingIsReleasedWhenTheDisclosureCannotBeRecorded) {
  Consent();
  FailingAuditLog broken;
  auto failing = NewAgentAuditLog("vol-a", f_.partnership, &broken,
                                  f_.store.get(), "test-agent");
  auto answer = Disclose(Request(), failing.get());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(answer.status().message(), HasSubstr("nothing was released"));
  // The local API is told too; a refusal that cannot be recorded says so.
  auto s = failing->LocalCallRefused(self_, "RecordConsent",
                                     absl::InvalidArgumentError("field x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("this refusal: field x"));
}

TEST_F(AgentAuditTest, ConsentChangesNameTheConsentAndFindThePerson) {
  const std::string id = Consent();
  ASSERT_TRUE(audit_
                  ->ConsentRecorded(
                      self_,
                      [&] {
                        accord::v1::ConsentRecord c;
                        c.set_subject_local_id("S-1");
                        c.add_granted_to_orgs("vol-b");
                        c.add_purposes("support");
                        c.set_recorded_by("ISVA Isla Vance");
                        return c;
                      }(),
                      id)
                  .ok());
  AuditEntry e = Last();
  EXPECT_EQ(e.method(), "RecordConsent");
  EXPECT_EQ(e.consent_id(), id);
  EXPECT_EQ(e.caller_org(), "vol-a");
  EXPECT_EQ(e.actor().user_id(), "dpo-ann");
  EXPECT_THAT(e.detail(), HasSubstr("to vol-b; purposes support"));
  ASSERT_EQ(e.subjects_size(), static_cast<int>(tokens_.size()));

  accord::v1::WithdrawConsentRequest w;
  w.set_consent_id(id);
  w.set_recorded_by("ISVA Isla Vance");
  ASSERT_TRUE(f_.local->WithdrawConsent(w).ok());
  ASSERT_TRUE(audit_->ConsentWithdrawn(self_, w).ok());
  e = Last();
  EXPECT_EQ(e.method(), "WithdrawConsent");
  EXPECT_EQ(e.consent_id(), id);
  EXPECT_EQ(e.subjects(0).value(), tokens_[0].value());
  // Found by her tokens, as her subject access report at this agent is.
  auto page = log_->SubjectAccess({tokens_[0]}, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 2u);
}

TEST_F(AgentAuditTest, AMergeOfTwoIdsOfOnePersonIsRecorded) {
  ASSERT_TRUE(audit_->SubjectsMerged(self_, "S-1", {"S-7", "S-9"}).ok());
  const AuditEntry e = Last();
  EXPECT_EQ(e.method(), "UpsertSubject");
  EXPECT_EQ(e.holder(), "vol-a");
  EXPECT_EQ(e.actor().user_id(), "dpo-ann");
  EXPECT_EQ(e.detail(), "merged local ids S-7, S-9 into S-1 (one person)");
  ASSERT_EQ(e.subjects_size(), static_cast<int>(tokens_.size()));
  EXPECT_EQ(e.subjects(0).value(), tokens_[0].value());
}

TEST_F(AgentAuditTest, LocalRefusalsImportsAndReferralsAreRecorded) {
  const Caller other = CallerAs("spiffe://test.accord/org/vol-b");
  const absl::Status why = absl::PermissionDeniedError("not vol-a");
  EXPECT_EQ(audit_->LocalCallRefused(other, "UpsertSubject", why), why);
  AuditEntry e = Last();
  EXPECT_EQ(e.method(), "UpsertSubject");
  EXPECT_EQ(e.caller(), "spiffe://test.accord/org/vol-b");
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);

  accord::v1::ImportReport report;
  report.set_rows_read(4);
  report.set_rows_applied(3);
  report.set_rows_rejected(1);
  report.set_records_written(2);
  ASSERT_TRUE(audit_->Imported(self_, report).ok());
  e = Last();
  EXPECT_EQ(e.method(), "Import");
  EXPECT_THAT(e.detail(), HasSubstr("read 4 rows: 3 applied, 1 rejected"));
  EXPECT_EQ(e.record_count(), 2u);

  accord::v1::LocalSendReferralRequest send;
  send.set_subject_local_id("S-1");
  send.set_to_org("vol-c");
  send.set_purpose("support");
  (*send.mutable_content()->mutable_contact_details())["phone"] = "07700";
  send.mutable_content()->set_case_summary("SECRET-RECORD-TEXT");
  const absl::Status refused = absl::PermissionDeniedError(
      "field content.contact_details: rule r does not release 'phone'");
  EXPECT_EQ(audit_->ReferralRefused(send, self_.actor, refused), refused);
  e = Last();
  EXPECT_EQ(e.method(), "SendReferral");
  EXPECT_EQ(e.holder(), "vol-c");
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_THAT(e.deny_reason(), HasSubstr("does not release 'phone'"));
  EXPECT_EQ(e.detail(), "asked to send: phone, case_summary");
  EXPECT_EQ(e.subjects_size(), static_cast<int>(tokens_.size()));

  accord::v1::Referral r;
  r.set_id("ref-1234abcd");
  r.set_from_org("vol-a");
  r.set_to_org("vol-c");
  r.set_purpose("support");
  r.set_consent_reference("c-1");
  ASSERT_TRUE(audit_->ReferralSending(send, r, self_.actor).ok());
  e = Last();
  EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
  EXPECT_EQ(e.referral_id(), "ref-1234abcd");
  EXPECT_EQ(e.consent_id(), "c-1");
  EXPECT_THAT(e.fields_released(), ElementsAre("phone", "case_summary"));
}

TEST_F(AgentAuditTest, ReferralsOpenedDeliveredAndMovedAreRecorded) {
  accord::v1::Referral r;
  r.set_id("ref-5678abcd");
  r.set_from_org("vol-b");
  r.set_to_org("vol-a");
  r.set_purpose("support");
  *r.add_subjects() = tokens_[0];
  absl::Notification delivered;
  accord::v1::DeliverReferralResponse fresh;
  audit_->ReferralDelivered(r, fresh, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    delivered.Notify();
  });
  delivered.WaitForNotification();
  AuditEntry e = Last();
  EXPECT_EQ(e.method(), "DeliverReferral");
  EXPECT_EQ(e.caller(), "spiffe://test.accord/gateway");
  EXPECT_EQ(e.caller_org(), "vol-b");
  EXPECT_EQ(e.holder(), "vol-a");
  EXPECT_EQ(e.detail(), "delivered to the inbox");

  // Listing the inbox opens the content for this organisation's system:
  // one entry per referral opened, none for what was not.
  accord::v1::ListReferralsResponse listed;
  auto* opened = listed.add_referrals();
  *opened->mutable_referral() = r;
  (*opened->mutable_content()->mutable_contact_details())["phone"] = "077";
  opened->mutable_content()->add_needs("housing");
  *listed.add_referrals()->mutable_referral() = r;  // not opened here
  const uint64_t before = log_->Size();
  ASSERT_TRUE(audit_->ReferralsOpened(self_, listed).ok());
  EXPECT_EQ(log_->Size(), before + 1);
  e = Last();
  EXPECT_EQ(e.method(), "OpenReferral");
  EXPECT_EQ(e.referral_id(), "ref-5678abcd");
  EXPECT_EQ(e.actor().user_id(), "dpo-ann");
  EXPECT_EQ(e.detail(), "from vol-b; content opened: phone, needs");

  // A change this organisation made, and one the gateway refused.
  accord::v1::UpdateReferralRequest up;
  up.set_referral_id(r.id());
  up.mutable_status()->set_state(accord::v1::REFERRAL_STATE_ACCEPTED);
  accord::v1::UpdateReferralResponse changed;
  *changed.mutable_referral() = r;
  changed.set_audit_seq(41);
  ASSERT_TRUE(audit_->ReferralUpdated(self_, up, changed).ok());
  EXPECT_EQ(Last().detail(),
            "moved to REFERRAL_STATE_ACCEPTED (gateway audit entry 41)");
  const absl::Status no = absl::FailedPreconditionError("already closed");
  EXPECT_EQ(audit_->ReferralUpdated(self_, up, no).status(), no);
  EXPECT_EQ(Last().decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(Last().deny_reason(), "already closed");
}

TEST_F(AgentAuditTest, ReadingTheLogIsAuthorisedAndRecorded) {
  auto read = [&](const Caller& c) {
    absl::Notification n;
    absl::Status out;
    audit_->AuthoriseRead(c, "AuditSearch", "", [&](absl::Status s) {
      out = s;
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  };
  EXPECT_TRUE(read(self_).ok());
  EXPECT_EQ(Last().method(), "AuditSearch");
  EXPECT_EQ(Last().decision(), accord::v1::AUDIT_DECISION_ALLOW);
  // Another partner, or an auditor the partnership does not name.
  for (const char* uri :
       {"spiffe://test.accord/org/vol-b", "spiffe://test.accord/agent/vol-a",
        "spiffe://test.accord/auditor/unknown"}) {
    const absl::Status s = read(CallerAs(uri));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << uri;
    EXPECT_THAT(s.message(),
                HasSubstr("only spiffe://test.accord/org/vol-a and the "
                          "partnership's auditors may"));
    EXPECT_EQ(Last().decision(), accord::v1::AUDIT_DECISION_DENY);
    EXPECT_EQ(Last().caller(), uri);
  }
}

TEST_F(AgentAuditTest, RefusalsQuotingInvalidUtf8AreStillRecorded) {
  const absl::Status why =
      absl::InvalidArgumentError("column '\xff\xfe' is not known");
  EXPECT_EQ(audit_->LocalCallRefused(self_, "Import", why), why);
  EXPECT_EQ(Last().deny_reason(),
            "column '\xef\xbf\xbd\xef\xbf\xbd' is not known");
}

}  // namespace
}  // namespace accord::agent
