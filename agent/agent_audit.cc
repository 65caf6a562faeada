#include "agent/agent_audit.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/store.h"
#include "audit/entry.h"
#include "audit/printable.h"
#include "runtime/clock.h"

namespace accord::agent {
namespace {

using accord::v1::AuditEntry;
using accord::v1::Referral;

// Every text field of `msg`, at any depth, made valid UTF-8: an entry with
// invalid UTF-8 is refused by the log, and a refusal that quotes a caller's
// bytes must still be recorded.
void MakeUtf8(google::protobuf::Message* msg) {
  const auto* d = msg->GetDescriptor();
  const auto* r = msg->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    using FD = google::protobuf::FieldDescriptor;
    if (f->type() == FD::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(*msg, f); ++j)
          r->SetRepeatedString(
              msg, f, j, audit::ValidUtf8(r->GetRepeatedString(*msg, f, j)));
      } else if (r->HasField(*msg, f)) {
        r->SetString(msg, f, audit::ValidUtf8(r->GetString(*msg, f)));
      }
    } else if (f->type() == FD::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(*msg, f); ++j)
          MakeUtf8(r->MutableRepeatedMessage(msg, f, j));
      } else if (r->HasField(*msg, f)) {
        MakeUtf8(r->MutableMessage(msg, f));
      }
    }
  }
}

std::string Capped(const std::string& s, size_t n = 64) {
  return s.size() <= n ? s : s.substr(0, n);
}

std::string CategoryName(accord::v1::DataCategory c) {
  return accord::v1::DataCategory_Name(c);
}

// What a referral's content carries, by name: its contact fields, then
// "needs" and "case_summary" when present. Never the values.
std::vector<std::string> ContentNames(const accord::v1::ReferralContent& c) {
  std::vector<std::string> names;
  for (const auto& [name, value] : c.contact_details()) names.push_back(name);
  std::sort(names.begin(), names.end());
  if (c.needs_size() > 0) names.push_back("needs");
  if (!c.case_summary().empty()) names.push_back("case_summary");
  return names;
}

class AgentAuditLog final : public AgentAudit {
 public:
  AgentAuditLog(std::string self_org,
                std::shared_ptr<const PartnershipDirectory> partnership,
                audit::AuditLog* log, AgentStore* store, std::string prefix)
      : self_org_(std::move(self_org)),
        partnership_(std::move(partnership)),
        log_(log),
        store_(store),
        prefix_(std::move(prefix)) {}

  void Disclosure(const accord::v1::DiscloseRequest& request,
                  accord::v1::DiscloseResponse response,
                  std::vector<std::string> record_ids,
                  Release<accord::v1::DiscloseResponse> release) override;
  void Statistics(
      const accord::v1::HolderStatisticsRequest& request,
      absl::StatusOr<accord::v1::HolderStatisticsResponse> result,
      Release<accord::v1::HolderStatisticsResponse> release) override;
  void HolderCallRefused(const Caller& caller, const std::string& method,
                         const absl::Status& why, Recorded done) override;
  void ReferralDelivered(
      const Referral& referral,
      const absl::StatusOr<accord::v1::DeliverReferralResponse>& result,
      Recorded done) override;
  void ReferralStatusNotified(const Referral& referral,
                              const absl::Status& result,
                              Recorded done) override;
  absl::Status LocalCallRefused(const Caller& caller, const std::string& method,
                                const absl::Status& why) override;
  absl::Status ConsentRecorded(const Caller& caller,
                               const accord::v1::ConsentRecord& consent,
                               const std::string& consent_id) override;
  absl::Status ConsentWithdrawn(
      const Caller& caller,
      const accord::v1::WithdrawConsentRequest& request) override;
  absl::Status SubjectsMerged(
      const Caller& caller, const std::string& into_local_id,
      const std::vector<std::string>& merged_local_ids) override;
  absl::Status Imported(const Caller& caller,
                        const accord::v1::ImportReport& report) override;
  absl::Status ReferralsOpened(
      const Caller& caller,
      const accord::v1::ListReferralsResponse& listed) override;
  absl::Status WatchStarted(const Caller& caller,
                            accord::v1::ReferralBox box) override;
  absl::StatusOr<accord::v1::UpdateReferralResponse> ReferralUpdated(
      const Caller& caller, const accord::v1::UpdateReferralRequest& request,
      absl::StatusOr<accord::v1::UpdateReferralResponse> result) override;
  absl::Status ReferralRefused(
      const accord::v1::LocalSendReferralRequest& request,
      const accord::v1::Actor& actor, const absl::Status& why) override;
  absl::Status ReferralSending(
      const accord::v1::LocalSendReferralRequest& request,
      const Referral& referral, const accord::v1::Actor& actor) override;
  void ReferralSent(
      const Referral& referral, const accord::v1::Actor& actor,
      const absl::StatusOr<accord::v1::SendReferralResponse>& result) override;

  void AuthoriseRead(const Caller& caller, const std::string& method,
                     const std::string& detail,
                     std::function<void(absl::Status)> done) override;
  void RefuseRead(const Caller& caller, const std::string& method,
                  const std::string& detail, absl::Status status,
                  std::function<void(absl::Status)> done) override;
  audit::Reviewer ReviewerOf(const Caller& caller) const override;

 private:
  // An entry of this agent's log for `method`.
  AuditEntry Base(
      const std::string& method,
      accord::v1::Action action = accord::v1::ACTION_UNSPECIFIED) const {
    AuditEntry e;
    e.set_agent_org(self_org_);
    e.set_method(method);
    e.set_action(action);
    return e;
  }
  // An entry for a call by `caller` (its organisation when it is one of the
  // partnership's organisations or their agents).
  AuditEntry FromCaller(
      const Caller& caller, const std::string& method,
      accord::v1::Action action = accord::v1::ACTION_UNSPECIFIED) const {
    AuditEntry e = Base(method, action);
    const auto& p = caller.principal;
    e.set_caller(p.ok() ? p->uri : caller.peer_uris);
    if (p.ok() &&
        (p->kind == PrincipalKind::kOrg || p->kind == PrincipalKind::kAgent) &&
        partnership_->FindOrg(p->name) != nullptr) {
      e.set_caller_org(p->name);
    }
    *e.mutable_actor() = caller.actor;
    return e;
  }
  // This organisation's own systems, acting through its agent.
  AuditEntry FromSelf(const std::string& method,
                      const accord::v1::Actor& actor) const {
    AuditEntry e = Base(method, accord::v1::ACTION_REFERRAL);
    e.set_caller(SpiffeId(partnership_->id(), PrincipalKind::kOrg, self_org_));
    e.set_caller_org(self_org_);
    *e.mutable_actor() = actor;
    return e;
  }
  AuditEntry FromGateway(const std::string& method,
                         accord::v1::Action action) const {
    AuditEntry e = Base(method, action);
    e.set_caller(SpiffeId(partnership_->id(), PrincipalKind::kGateway));
    return e;
  }
  // The referral's routing: who sent it (caller_org), to whom (holder), for
  // what, about whom, under which agreement.
  static void DescribeReferral(const Referral& r, AuditEntry* e,
                               bool sender_is_caller) {
    if (!sender_is_caller) e->set_caller_org(Capped(r.from_org()));
    e->set_holder(Capped(r.to_org()));
    e->set_referral_id(Capped(r.id()));
    e->set_purpose(Capped(r.purpose()));
    for (int i = 0; i < r.subjects_size() && i < 8; ++i)
      *e->add_subjects() = r.subjects(i);
    e->set_agreement_id(Capped(r.agreement_id()));
    e->set_agreement_version(r.agreement_version());
    e->set_rule_id(Capped(r.rule_id()));
    if (!r.consent_reference().empty())
      e->set_consent_id(Capped(r.consent_reference(), 128));
  }
  static void Deny(AuditEntry* e, const absl::Status& why) {
    e->set_decision(accord::v1::AUDIT_DECISION_DENY);
    e->set_deny_reason(std::string(why.message()));
  }

  // Appends; `done` gets OK once durable, or the log's error.
  void Append(AuditEntry e, Recorded done) {
    MakeUtf8(&e);
    if (e.decision() == accord::v1::AUDIT_DECISION_UNSPECIFIED)
      e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
    log_->Append(std::move(e),
                 [done = std::move(done)](absl::StatusOr<uint64_t> seq) {
                   done(seq.ok() ? absl::OkStatus() : seq.status());
                 });
  }
  // Appends all and waits until every one is durable (one commit when they
  // arrive together); the first failure is returned.
  absl::Status AppendAndWait(std::vector<AuditEntry> entries) {
    if (entries.empty()) return absl::OkStatus();
    // Shared with the callbacks, which may still be leaving the lock when
    // the wait below returns.
    struct Wait {
      absl::Mutex mu;
      size_t left ABSL_GUARDED_BY(mu) = 0;
      absl::Status first ABSL_GUARDED_BY(mu);
      bool Done() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return left == 0; }
    };
    auto wait = std::make_shared<Wait>();
    {
      absl::MutexLock l(&wait->mu);
      wait->left = entries.size();
    }
    for (auto& e : entries) {
      Append(std::move(e), [wait](absl::Status s) {
        absl::MutexLock l(&wait->mu);
        if (wait->first.ok() && !s.ok()) wait->first = s;
        --wait->left;
      });
    }
    absl::MutexLock l(&wait->mu);
    wait->mu.Await(absl::Condition(wait.get(), &Wait::Done));
    return wait->first;
  }
  absl::Status AppendAndWait(AuditEntry e) {
    std::vector<AuditEntry> one;
    one.push_back(std::move(e));
    return AppendAndWait(std::move(one));
  }
  // The partner is told the log failed; what could not be recorded is named.
  static absl::Status Failure(const absl::Status& s, absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat("this agent's audit log could not record ", what, " (",
                     s.message(), ")"));
  }
  // `why` once recorded, else the log's failure.
  static absl::Status RefusalOr(const absl::Status& recorded,
                                const absl::Status& why) {
    if (!recorded.ok()) {
      return Failure(recorded, absl::StrCat("this refusal: ", why.message()));
    }
    return why;
  }

  // Best effort: a person's tokens, so that her subject access report at
  // this agent finds the entry. Empty when she is not (or no longer) held.
  std::vector<accord::v1::SubjectToken> TokensOf(const std::string& local_id) {
    if (local_id.empty() || store_ == nullptr) return {};
    auto tokens = store_->TokensOf(local_id);
    if (!tokens.ok()) return {};
    return *tokens;
  }
  std::string SubjectOfConsent(const std::string& consent_id) {
    std::string local_id;
    if (store_ == nullptr) return local_id;
    (void)store_->Write([&](AgentStore::Writer& w) -> absl::Status {
      auto c = w.FindConsent(consent_id);
      if (c.ok()) local_id = c->subject_local_id();
      return absl::OkStatus();
    });
    return local_id;
  }
  void AddSubjects(const std::string& local_id, AuditEntry* e) {
    for (auto& t : TokensOf(local_id)) *e->add_subjects() = std::move(t);
  }

  const std::string self_org_;
  const std::shared_ptr<const PartnershipDirectory> partnership_;
  audit::AuditLog* const log_;
  AgentStore* const store_;
  const std::string prefix_;
};

// ---------------------------------------------------------------------------
// Holder API

void AgentAuditLog::Disclosure(const accord::v1::DiscloseRequest& request,
                               accord::v1::DiscloseResponse response,
                               std::vector<std::string> record_ids,
                               Release<accord::v1::DiscloseResponse> release) {
  const bool involvement = request.mode() == accord::v1::QUERY_MODE_INVOLVEMENT;
  AuditEntry e = FromGateway(involvement ? "DiscloseInvolvement" : "Disclose",
                             accord::v1::ACTION_QUERY);
  // As the gateway records the same answer: the requester, this holder,
  // the decision it answered under.
  e.set_request_id(Capped(request.request_id()));
  e.set_caller_org(Capped(request.requester_org()));
  *e.mutable_actor() = request.actor();
  e.set_purpose(Capped(request.purpose()));
  e.set_holder(self_org_);
  const auto& d = request.decision();
  e.set_agreement_id(Capped(d.agreement_id()));
  e.set_agreement_version(d.agreement_version());
  e.set_rule_id(Capped(d.rule_id()));
  e.set_lawful_basis(d.lawful_basis());
  for (int i = 0; i < request.subjects_size() && i < 8; ++i)
    *e.add_subjects() = request.subjects(i);
  // Field names in order, then one "record:<CATEGORY>" per record: the
  // gateway's convention, so reconciliation compares like with like.
  std::vector<std::string> fields;
  for (const auto& [name, value] : response.fields()) fields.push_back(name);
  std::sort(fields.begin(), fields.end());
  for (auto& f : fields) e.add_fields_released(std::move(f));
  for (const auto& r : response.records())
    e.add_fields_released(absl::StrCat("record:", CategoryName(r.category())));
  e.set_record_count(response.records_size());
  for (auto& id : record_ids) e.add_record_ids(std::move(id));
  e.set_detail(accord::v1::HolderStatus_Name(response.status()));
  switch (response.status()) {
    case accord::v1::HOLDER_STATUS_ANSWERED:
    case accord::v1::HOLDER_STATUS_NO_MATCH:
      e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
      break;
    default:
      e.set_decision(accord::v1::AUDIT_DECISION_DENY);
      e.set_deny_reason(response.detail());
  }
  if (response.consent_set_aside()) {
    e.set_flag_for_review(true);
    e.set_no_consent_justification(request.no_consent().justification());
    *e.mutable_no_consent_approver() = request.no_consent().approver();
  }
  Append(std::move(e), [response = std::move(response),
                        release = std::move(release)](absl::Status s) mutable {
    if (!s.ok()) {
      return release(Failure(s, "this disclosure; nothing was released"));
    }
    release(std::move(response));
  });
}

void AgentAuditLog::Statistics(
    const accord::v1::HolderStatisticsRequest& request,
    absl::StatusOr<accord::v1::HolderStatisticsResponse> result,
    Release<accord::v1::HolderStatisticsResponse> release) {
  AuditEntry e = FromGateway("Statistics", accord::v1::ACTION_STATISTICS);
  e.set_request_id(Capped(request.request_id()));
  e.set_caller_org(Capped(request.requester_org()));
  *e.mutable_actor() = request.actor();
  e.set_purpose(Capped(request.purpose()));
  e.set_holder(self_org_);
  const auto& d = request.decision();
  e.set_agreement_id(Capped(d.agreement_id()));
  e.set_agreement_version(d.agreement_version());
  e.set_rule_id(Capped(d.rule_id()));
  e.set_lawful_basis(d.lawful_basis());
  for (int i = 0; i < request.dimensions_size() && i < 8; ++i)
    e.add_fields_released(
        absl::StrCat("dimension:", Capped(request.dimensions(i))));
  if (result.ok()) {
    uint64_t engagements = 0;
    for (const auto& p : result->periods()) engagements += p.engagements();
    e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
    e.set_record_count(
        static_cast<uint32_t>(std::min<uint64_t>(engagements, UINT32_MAX)));
    e.set_detail(absl::StrCat(result->periods_size(), " periods, ", engagements,
                              " engagements counted"));
  } else {
    e.set_decision(accord::v1::AUDIT_DECISION_DENY);
    e.set_deny_reason(std::string(result.status().message()));
  }
  Append(std::move(e), [result = std::move(result),
                        release = std::move(release)](absl::Status s) mutable {
    if (!s.ok()) {
      return release(Failure(s, "this statistics run; nothing was released"));
    }
    release(std::move(result));
  });
}

void AgentAuditLog::HolderCallRefused(const Caller& caller,
                                      const std::string& method,
                                      const absl::Status& why, Recorded done) {
  AuditEntry e = FromCaller(caller, method);
  Deny(&e, why);
  Append(std::move(e), [why, done = std::move(done)](absl::Status s) {
    done(RefusalOr(s, why));
  });
}

void AgentAuditLog::ReferralDelivered(
    const Referral& referral,
    const absl::StatusOr<accord::v1::DeliverReferralResponse>& result,
    Recorded done) {
  AuditEntry e = FromGateway("DeliverReferral", accord::v1::ACTION_REFERRAL);
  DescribeReferral(referral, &e, /*sender_is_caller=*/false);
  const absl::Status status = result.status();
  if (!status.ok()) {
    Deny(&e, status);
  } else {
    e.set_detail(result->already_delivered() ? "already in the inbox"
                                             : "delivered to the inbox");
  }
  Append(std::move(e), [status, done = std::move(done)](absl::Status s) {
    done(status.ok() && !s.ok()
             ? Failure(s, "the delivery; the gateway will deliver it again")
             : RefusalOr(s, status));
  });
}

void AgentAuditLog::ReferralStatusNotified(const Referral& referral,
                                           const absl::Status& result,
                                           Recorded done) {
  AuditEntry e =
      FromGateway("NotifyReferralStatus", accord::v1::ACTION_REFERRAL);
  DescribeReferral(referral, &e, /*sender_is_caller=*/false);
  if (!result.ok()) {
    Deny(&e, result);
  } else {
    std::string by;
    if (referral.history_size() > 0) {
      const auto& h = *referral.history().rbegin();
      by = h.by_org().empty() ? " by the gateway"
                              : absl::StrCat(" by ", h.by_org());
    }
    e.set_detail(absl::StrCat(
        "now ", accord::v1::ReferralState_Name(referral.state()), by, " (",
        referral.from_org() == self_org_ ? "outbox" : "inbox", ")"));
  }
  Append(std::move(e), [result, done = std::move(done)](absl::Status s) {
    done(result.ok() && !s.ok()
             ? Failure(s, "the status change; the gateway will report it again")
             : RefusalOr(s, result));
  });
}

// ---------------------------------------------------------------------------
// Local API

absl::Status AgentAuditLog::LocalCallRefused(const Caller& caller,
                                             const std::string& method,
                                             const absl::Status& why) {
  AuditEntry e = FromCaller(caller, method);
  Deny(&e, why);
  return RefusalOr(AppendAndWait(std::move(e)), why);
}

absl::Status AgentAuditLog::ConsentRecorded(const Caller& caller,
                                            const accord::v1::ConsentRecord& c,
                                            const std::string& consent_id) {
  AuditEntry e = FromCaller(caller, "RecordConsent");
  e.set_holder(self_org_);
  e.set_consent_id(consent_id);
  AddSubjects(c.subject_local_id(), &e);
  std::vector<std::string> to(c.granted_to_orgs().begin(),
                              c.granted_to_orgs().end());
  for (int k : c.granted_to_kinds())
    to.push_back(accord::v1::OrgKind_Name(static_cast<accord::v1::OrgKind>(k)));
  std::vector<std::string> categories;
  for (int k : c.categories())
    categories.push_back(
        CategoryName(static_cast<accord::v1::DataCategory>(k)));
  e.set_detail(absl::StrCat(
      "to ", absl::StrJoin(to, ", "), "; purposes ",
      absl::StrJoin(c.purposes(), ", "), "; categories ",
      absl::StrJoin(categories, ", "), "; given ",
      audit::FormatTimestamp(c.given_at()), " (",
      accord::v1::ConsentMethod_Name(c.method()), "), recorded by ",
      c.recorded_by(),
      c.has_expires_at()
          ? absl::StrCat("; expires ", audit::FormatTimestamp(c.expires_at()))
          : ""));
  if (auto s = AppendAndWait(std::move(e)); !s.ok())
    return Failure(s, absl::StrCat("consent ", consent_id,
                                   ", which is recorded and in force"));
  return absl::OkStatus();
}

absl::Status AgentAuditLog::ConsentWithdrawn(
    const Caller& caller, const accord::v1::WithdrawConsentRequest& request) {
  AuditEntry e = FromCaller(caller, "WithdrawConsent");
  e.set_holder(self_org_);
  e.set_consent_id(request.consent_id());
  AddSubjects(SubjectOfConsent(request.consent_id()), &e);
  e.set_detail(absl::StrCat(
      "withdrawn",
      request.has_withdrawn_at()
          ? absl::StrCat(" at ", audit::FormatTimestamp(request.withdrawn_at()))
          : "",
      ", recorded by ", request.recorded_by()));
  if (auto s = AppendAndWait(std::move(e)); !s.ok()) {
    return Failure(
        s, absl::StrCat("the withdrawal of consent ", request.consent_id(),
                        ", which is recorded and in force"));
  }
  return absl::OkStatus();
}

absl::Status AgentAuditLog::SubjectsMerged(
    const Caller& caller, const std::string& into_local_id,
    const std::vector<std::string>& merged_local_ids) {
  AuditEntry e = FromCaller(caller, "UpsertSubject");
  e.set_holder(self_org_);
  AddSubjects(into_local_id, &e);
  e.set_detail(absl::StrCat("merged local ids ",
                            absl::StrJoin(merged_local_ids, ", "), " into ",
                            into_local_id, " (one person)"));
  if (auto s = AppendAndWait(std::move(e)); !s.ok()) {
    return Failure(
        s, absl::StrCat("the merge into ", into_local_id, ", which is made"));
  }
  return absl::OkStatus();
}

absl::Status AgentAuditLog::Imported(const Caller& caller,
                                     const accord::v1::ImportReport& r) {
  AuditEntry e = FromCaller(caller, "Import");
  e.set_holder(self_org_);
  e.set_record_count(static_cast<uint32_t>(
      std::min<uint64_t>(r.records_written(), UINT32_MAX)));
  e.set_detail(absl::StrCat(
      "read ", r.rows_read(), " rows: ", r.rows_applied(), " applied, ",
      r.rows_rejected(), " rejected; subjects ", r.subjects_created(), " new, ",
      r.subjects_updated(), " updated; records ", r.records_written(),
      "; consents ", r.consents_recorded(), "; engagements ",
      r.engagements_written()));
  if (auto s = AppendAndWait(std::move(e)); !s.ok())
    return Failure(s, "this import, which is applied");
  return absl::OkStatus();
}

absl::Status AgentAuditLog::ReferralsOpened(
    const Caller& caller, const accord::v1::ListReferralsResponse& listed) {
  std::vector<AuditEntry> entries;
  for (const auto& v : listed.referrals()) {
    if (!v.has_content()) continue;
    AuditEntry e =
        FromCaller(caller, "OpenReferral", accord::v1::ACTION_REFERRAL);
    DescribeReferral(v.referral(), &e, /*sender_is_caller=*/true);
    e.set_detail(absl::StrCat(
        "from ", v.referral().from_org(),
        "; content opened: ", absl::StrJoin(ContentNames(v.content()), ", ")));
    entries.push_back(std::move(e));
  }
  if (auto s = AppendAndWait(std::move(entries)); !s.ok())
    return Failure(s, "the referrals opened; their content is withheld");
  return absl::OkStatus();
}

absl::Status AgentAuditLog::WatchStarted(const Caller& caller,
                                         accord::v1::ReferralBox box) {
  AuditEntry e =
      FromCaller(caller, "WatchReferrals", accord::v1::ACTION_REFERRAL);
  e.set_detail(absl::StrCat(
      "watching ",
      box == accord::v1::REFERRAL_BOX_UNSPECIFIED
          ? "inbox and outbox"
          : (box == accord::v1::REFERRAL_BOX_INBOX ? "the inbox"
                                                   : "the outbox"),
      "; the content of each inbox referral that arrives is opened for it"));
  if (auto s = AppendAndWait(std::move(e)); !s.ok())
    return Failure(s, "the watch; nothing is shown");
  return absl::OkStatus();
}

absl::StatusOr<accord::v1::UpdateReferralResponse>
AgentAuditLog::ReferralUpdated(
    const Caller& caller, const accord::v1::UpdateReferralRequest& request,
    absl::StatusOr<accord::v1::UpdateReferralResponse> result) {
  AuditEntry e =
      FromCaller(caller, "UpdateReferral", accord::v1::ACTION_REFERRAL);
  e.set_referral_id(Capped(request.referral_id()));
  std::string to = accord::v1::ReferralState_Name(request.status().state());
  if (request.status().outcome() != accord::v1::OUTCOME_UNSPECIFIED) {
    absl::StrAppend(&to, " (",
                    accord::v1::Outcome_Name(request.status().outcome()), ")");
  }
  if (result.ok()) {
    DescribeReferral(result->referral(), &e, /*sender_is_caller=*/true);
    e.set_detail(absl::StrCat("moved to ", to, " (gateway audit entry ",
                              result->audit_seq(), ")"));
  } else {
    e.set_detail(absl::StrCat("asked to move it to ", to));
    Deny(&e, result.status());
  }
  const absl::Status s = AppendAndWait(std::move(e));
  if (!result.ok()) return RefusalOr(s, result.status());
  if (!s.ok()) {
    return Failure(
        s, absl::StrCat("the change of referral ", request.referral_id(),
                        ", which the gateway has made"));
  }
  return result;
}

// ---------------------------------------------------------------------------
// Referrals sent

absl::Status AgentAuditLog::ReferralRefused(
    const accord::v1::LocalSendReferralRequest& request,
    const accord::v1::Actor& actor, const absl::Status& why) {
  AuditEntry e = FromSelf("SendReferral", actor);
  e.set_holder(Capped(request.to_org()));
  e.set_purpose(Capped(request.purpose()));
  AddSubjects(request.subject_local_id(), &e);
  e.set_detail(absl::StrCat(
      "asked to send: ", absl::StrJoin(ContentNames(request.content()), ", ")));
  Deny(&e, why);
  return RefusalOr(AppendAndWait(std::move(e)), why);
}

absl::Status AgentAuditLog::ReferralSending(
    const accord::v1::LocalSendReferralRequest& request,
    const Referral& referral, const accord::v1::Actor& actor) {
  AuditEntry e = FromSelf("SendReferral", actor);
  DescribeReferral(referral, &e, /*sender_is_caller=*/true);
  for (auto& name : ContentNames(request.content()))
    e.add_fields_released(std::move(name));
  if (request.has_no_consent()) {
    e.set_flag_for_review(true);
    e.set_no_consent_justification(request.no_consent().justification());
    *e.mutable_no_consent_approver() = request.no_consent().approver();
  }
  e.set_detail(absl::StrCat("sealed to ", referral.to_org(),
                            "'s referral key and handed to the gateway"));
  if (auto s = AppendAndWait(std::move(e)); !s.ok())
    return Failure(s, "this referral; it was not sent");
  return absl::OkStatus();
}

void AgentAuditLog::ReferralSent(
    const Referral& referral, const accord::v1::Actor& actor,
    const absl::StatusOr<accord::v1::SendReferralResponse>& result) {
  AuditEntry e = FromSelf("SendReferral/answer", actor);
  DescribeReferral(referral, &e, /*sender_is_caller=*/true);
  if (result.ok()) {
    e.set_detail(absl::StrCat("accepted by the gateway: ",
                              accord::v1::ReferralState_Name(result->state()),
                              " (gateway audit entry ", result->audit_seq(),
                              ")"));
  } else {
    Deny(&e, absl::Status(result.status().code(),
                          absl::StrCat("refused by the gateway: ",
                                       result.status().message())));
  }
  if (auto s = AppendAndWait(std::move(e)); !s.ok()) {
    std::fprintf(stderr,
                 "%s: audit: could not record the gateway's answer "
                 "for referral %s: %s\n",
                 prefix_.c_str(), referral.id().c_str(),
                 std::string(s.message()).c_str());
  }
}

// ---------------------------------------------------------------------------
// Reading the log

void AgentAuditLog::AuthoriseRead(const Caller& caller,
                                  const std::string& method,
                                  const std::string& detail,
                                  std::function<void(absl::Status)> done) {
  absl::Status verdict = caller.principal.status();
  if (verdict.ok()) {
    const Principal& p = *caller.principal;
    const bool own_org = p.kind == PrincipalKind::kOrg && p.name == self_org_;
    const bool auditor =
        p.kind == PrincipalKind::kAuditor && partnership_->IsAuditor(p.uri);
    if (!own_org && !auditor) {
      verdict = absl::PermissionDeniedError(absl::StrCat(
          p.uri, " may not read the audit log of ", self_org_,
          "'s agent; only ",
          SpiffeId(partnership_->id(), PrincipalKind::kOrg, self_org_),
          " and the partnership's auditors may"));
    }
  }
  AuditEntry e = FromCaller(caller, method);
  e.set_detail(detail);
  if (!verdict.ok()) Deny(&e, verdict);
  Append(std::move(e), [verdict, done = std::move(done)](absl::Status s) {
    if (!s.ok()) return done(Failure(s, "this read; nothing was read"));
    done(verdict);
  });
}

void AgentAuditLog::RefuseRead(const Caller& caller, const std::string& method,
                               const std::string& detail, absl::Status status,
                               std::function<void(absl::Status)> done) {
  AuditEntry e = FromCaller(caller, method);
  e.set_detail(detail);
  Deny(&e, status);
  Append(std::move(e), [status, done = std::move(done)](absl::Status s) {
    if (!s.ok()) return done(Failure(s, "this read; nothing was read"));
    done(status);
  });
}

audit::Reviewer AgentAuditLog::ReviewerOf(const Caller& caller) const {
  const AuditEntry e = FromCaller(caller, "MarkReviewed");
  audit::Reviewer r;
  r.caller = e.caller();
  r.caller_org = e.caller_org();
  r.actor = caller.actor;
  r.agent_org = self_org_;
  return r;
}

}  // namespace

std::unique_ptr<AgentAudit> NewAgentAuditLog(
    std::string self_org,
    std::shared_ptr<const PartnershipDirectory> partnership,
    audit::AuditLog* log, AgentStore* store, std::string log_prefix) {
  return std::make_unique<AgentAuditLog>(std::move(self_org),
                                         std::move(partnership), log, store,
                                         std::move(log_prefix));
}

}  // namespace accord::agent
