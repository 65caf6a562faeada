#include "gateway/gateway.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "linkage/tokens.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"

namespace accord::gateway {
namespace {

using accord::v1::AuditEntry;
using accord::v1::HolderAnswer;

std::string NewRequestId() { return HexEncode(RandomBytes(12)); }

// Runs `done` after every entry is durable; the first failure wins. The
// common case, a query to one holder, is a single append with no shared
// state; several entries share a counter of those still pending.
void AppendAll(audit::AuditLog* log, std::vector<AuditEntry> entries,
               std::function<void(absl::StatusOr<uint64_t> first_seq)> done) {
  if (entries.size() == 1) {
    log->Append(std::move(entries[0]), std::move(done));
    return;
  }
  struct Pending {
    std::atomic<size_t> left;
    std::atomic<uint64_t> first{UINT64_MAX};
    absl::Mutex mu;  // guards `status`, taken only on failure
    absl::Status status;
    std::function<void(absl::StatusOr<uint64_t>)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = entries.size();
  pending->done = std::move(done);
  for (auto& e : entries) {
    log->Append(std::move(e), [pending](absl::StatusOr<uint64_t> seq) {
      if (seq.ok()) {
        uint64_t first = pending->first.load();
        while (*seq < first &&
               !pending->first.compare_exchange_weak(first, *seq)) {
        }
      } else {
        absl::MutexLock lock(&pending->mu);
        if (pending->status.ok()) pending->status = seq.status();
      }
      if (pending->left.fetch_sub(1) != 1) return;
      absl::Status status;
      {
        absl::MutexLock lock(&pending->mu);
        status = pending->status;
      }
      if (!status.ok()) return pending->done(status);
      pending->done(pending->first.load());
    });
  }
}

// A failure to make a decision durable must never release data.
absl::Status AuditFailure(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat(
      "the audit log could not record this decision; nothing was released (",
      s.message(), ")"));
}

}  // namespace

struct Gateway::QueryCall {
  Caller caller;
  const accord::v1::Organisation* org = nullptr;
  accord::v1::QueryRequest request;
  accord::v1::QueryResponse response;
  std::vector<AuditEntry>
      entries;  // one per holder decision, same order as answers
  std::atomic<int> outstanding{0};
  Done<accord::v1::QueryResponse> done;
  OrgLimits::Permit permit;  // the in-flight slot, returned with the call
};

Gateway::Gateway(std::shared_ptr<const PartnershipDirectory> partnership,
                 policy::Engine* policy, audit::AuditLog* audit,
                 HolderClients* holders, const Clock* clock,
                 GatewayOptions options)
    : partnership_(std::move(partnership)),
      policy_(policy),
      audit_(audit),
      holders_(holders),
      clock_(clock),
      options_(options),
      limits_(options.limits, clock) {}

absl::StatusOr<OrgLimits::Permit> Gateway::Admit(const Caller& caller) {
  if (!caller.principal.ok()) return caller.principal.status();
  const Principal& p = *caller.principal;
  return limits_.Admit(p.kind == PrincipalKind::kOrg ? p.name : p.uri);
}

AuditEntry Gateway::BaseEntry(const Caller& caller,
                              const std::string& method) const {
  AuditEntry e;
  e.set_caller(caller.principal.ok() ? caller.principal->uri
                                     : caller.peer_uris);
  if (caller.principal.ok() && caller.principal->kind == PrincipalKind::kOrg &&
      partnership_->FindOrg(caller.principal->name) != nullptr) {
    e.set_caller_org(caller.principal->name);
  }
  *e.mutable_actor() = caller.actor;
  e.set_method(method);
  return e;
}

void Gateway::Refuse(const Caller& caller, const std::string& method,
                     absl::Status status, AuditEntry entry,
                     std::function<void(absl::Status)> done) {
  if (entry.method().empty()) entry = BaseEntry(caller, method);
  entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
  entry.set_deny_reason(std::string(status.message()));
  audit_->Append(std::move(entry), [status, done = std::move(done)](
                                       absl::StatusOr<uint64_t> seq) {
    done(seq.ok() ? status : AuditFailure(seq.status()));
  });
}

void Gateway::AuditRefusal(const Caller& caller, const std::string& method,
                           absl::Status status) {
  Refuse(caller, method, std::move(status), {}, [](absl::Status) {});
}

absl::StatusOr<const accord::v1::Organisation*> Gateway::CallerOrg(
    const Caller& caller) const {
  if (!caller.principal.ok()) return caller.principal.status();
  if (caller.principal->kind != PrincipalKind::kOrg) {
    return absl::PermissionDeniedError(absl::StrCat(
        caller.principal->uri, " is not an organisation's identity"));
  }
  const auto* org = partnership_->FindOrg(caller.principal->name);
  if (org == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("organisation '", caller.principal->name,
                     "' is not a member of this partnership"));
  }
  return org;
}

void Gateway::Query(const Caller& caller,
                    const accord::v1::QueryRequest& request,
                    Done<accord::v1::QueryResponse> done) {
  auto call = std::make_shared<QueryCall>();
  call->caller = caller;
  call->request = request;
  call->done = std::move(done);
  if (call->request.request_id().empty())
    call->request.set_request_id(NewRequestId());
  const auto& req = call->request;

  AuditEntry base = BaseEntry(caller, "Query");
  base.set_request_id(req.request_id());
  base.set_action(accord::v1::ACTION_QUERY);
  base.set_purpose(req.purpose().substr(0, 64));
  auto refuse = [&](absl::Status s) {
    Refuse(caller, "Query", s, base,
           [call](absl::Status st) { call->done(st); });
  };

  auto org = CallerOrg(caller);
  if (!org.ok()) return refuse(org.status());
  call->org = *org;
  auto permit = Admit(caller);
  if (!permit.ok()) return refuse(permit.status());
  call->permit = std::move(*permit);
  if (auto s = ValidateMessage(req); !s.ok()) return refuse(s);
  for (int i = 0; i < req.subjects_size(); ++i) {
    if (auto s = linkage::ValidateTokenValue(req.subjects(i).value());
        !s.ok()) {
      return refuse(absl::InvalidArgumentError(
          absl::StrCat("field subjects[", i, "].value ", s.message())));
    }
  }
  *base.mutable_subjects() = req.subjects();
  if (!partnership_->HasPurpose(req.purpose())) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field purpose: '", req.purpose(),
                     "' is not a purpose of this partnership")));
  }

  // Which holders to ask: those named, or every holder some agreement could
  // allow.
  const absl::Time now = clock_->Now();
  std::vector<std::string> holders;
  if (req.holders_size() > 0) {
    for (const auto& h : req.holders()) {
      if (partnership_->FindOrg(h) == nullptr) {
        return refuse(absl::InvalidArgumentError(absl::StrCat(
            "field holders: '", h, "' is not a member of this partnership")));
      }
      holders.push_back(h);
    }
  } else {
    holders = policy_->CandidateHolders(
        call->org->id(), accord::v1::ACTION_QUERY, req.purpose(), now);
  }

  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(call->org->id());
  dreq.set_action(accord::v1::ACTION_QUERY);
  dreq.set_purpose(req.purpose());
  *dreq.mutable_fields() = req.fields();
  *dreq.mutable_categories() = req.categories();
  dreq.set_involvement_only(req.mode() == accord::v1::QUERY_MODE_INVOLVEMENT);
  if (req.has_no_consent()) *dreq.mutable_no_consent() = req.no_consent();
  *dreq.mutable_at() = ToProtoTime(now);

  struct Planned {
    int index;
    std::string holder;
    accord::v1::Decision decision;
  };
  std::vector<Planned> allowed;
  std::string first_denial;
  for (const auto& holder : holders) {
    if (holder == call->org->id())
      continue;  // a partner asks its own agent directly
    dreq.set_holder_org(holder);
    accord::v1::Decision d = policy_->DecideProto(dreq);
    HolderAnswer* answer = call->response.add_answers();
    answer->set_holder(holder);
    if (const auto* o = partnership_->FindOrg(holder))
      answer->set_holder_name(o->name());
    AuditEntry entry = base;
    entry.set_holder(holder);
    entry.set_agreement_id(d.agreement_id());
    entry.set_agreement_version(d.agreement_version());
    entry.set_rule_id(d.rule_id());
    entry.set_lawful_basis(d.lawful_basis());
    if (d.verdict() != accord::v1::VERDICT_ALLOW) {
      answer->set_status(accord::v1::HOLDER_STATUS_DENIED);
      answer->set_detail(d.explanation());
      entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
      entry.set_deny_reason(d.explanation());
      if (first_denial.empty()) first_denial = d.explanation();
    } else {
      answer->set_agreement_id(d.agreement_id());
      answer->set_agreement_version(d.agreement_version());
      answer->set_rule_id(d.rule_id());
      entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
      entry.set_flag_for_review(d.flag_for_review());
      if (d.consent() == accord::v1::CONSENT_REQUIREMENT_SET_ASIDE) {
        entry.set_no_consent_justification(req.no_consent().justification());
        *entry.mutable_no_consent_approver() = req.no_consent().approver();
      }
      if (!holders_->Knows(holder)) {
        answer->set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
        answer->set_detail("this organisation has no agent address");
      } else {
        allowed.push_back(
            {call->response.answers_size() - 1, holder, std::move(d)});
      }
    }
    call->entries.push_back(std::move(entry));
  }

  if (allowed.empty()) {
    const bool any = call->response.answers_size() > 0;
    return refuse(absl::PermissionDeniedError(
        any && !first_denial.empty()
            ? first_denial
            : absl::StrCat("no agreement permits ", call->org->id(),
                           " to query any holder for '", req.purpose(), "'")));
  }

  // Holders answer within the configured deadline, and never after the
  // caller has stopped waiting: a tenth of the caller's remaining time (at
  // least 50 ms) is kept to audit the decisions and reply.
  absl::Duration holder_deadline = options_.holder_deadline;
  if (caller.deadline != absl::InfiniteFuture()) {
    const absl::Duration left = caller.deadline - now;
    holder_deadline = std::min(
        holder_deadline, left - std::max(left / 10, absl::Milliseconds(50)));
    holder_deadline = std::max(holder_deadline, absl::Milliseconds(1));
  }
  call->outstanding = static_cast<int>(allowed.size());
  for (auto& p : allowed) {
    accord::v1::DiscloseRequest dr;
    dr.set_request_id(req.request_id());
    dr.set_requester_org(call->org->id());
    dr.set_purpose(req.purpose());
    *dr.mutable_subjects() = req.subjects();
    dr.set_mode(req.mode());
    *dr.mutable_decision() = std::move(p.decision);
    *dr.mutable_fields() = req.fields();
    *dr.mutable_categories() = req.categories();
    if (req.has_no_consent()) *dr.mutable_no_consent() = req.no_consent();
    *dr.mutable_actor() = caller.actor;
    const int index = p.index;
    holders_->Disclose(
        p.holder, std::move(dr), holder_deadline,
        [this, call, index](grpc::Status status,
                            accord::v1::DiscloseResponse resp) {
          HolderAnswer* a = call->response.mutable_answers(index);
          AuditEntry& e = call->entries[index];
          if (!status.ok()) {
            a->set_status(status.error_code() ==
                                  grpc::StatusCode::DEADLINE_EXCEEDED
                              ? accord::v1::HOLDER_STATUS_TIMED_OUT
                              : accord::v1::HOLDER_STATUS_UNAVAILABLE);
            a->set_detail(absl::StrCat("holder did not answer: ",
                                       status.error_message()));
            e.set_detail(a->detail());
          } else {
            a->set_status(resp.status());
            a->set_detail(resp.detail());
            *a->mutable_fields() = std::move(*resp.mutable_fields());
            *a->mutable_records() = std::move(*resp.mutable_records());
            *a->mutable_withheld() = std::move(*resp.mutable_withheld());
            *a->mutable_involvement() = std::move(*resp.mutable_involvement());
            a->set_consent_set_aside(resp.consent_set_aside());
            for (const auto& [name, value] : a->fields())
              e.add_fields_released(name);
            std::sort(e.mutable_fields_released()->begin(),
                      e.mutable_fields_released()->end());
            for (const auto& r : a->records()) {
              e.add_fields_released(absl::StrCat(
                  "record:", accord::v1::DataCategory_Name(r.category())));
            }
            e.set_record_count(a->records_size());
            if (resp.status() == accord::v1::HOLDER_STATUS_REFUSED) {
              e.set_decision(accord::v1::AUDIT_DECISION_DENY);
              e.set_deny_reason(
                  absl::StrCat("holder refused: ", resp.detail()));
            }
            e.set_detail(accord::v1::HolderStatus_Name(resp.status()));
          }
          if (call->outstanding.fetch_sub(1) == 1) FinishQuery(call);
        });
  }
}

void Gateway::FinishQuery(std::shared_ptr<QueryCall> call) {
  // Release only after every decision of this call is durable. The entries
  // are not read again: move them to the log rather than copy them.
  std::vector<AuditEntry> entries = std::move(call->entries);
  AppendAll(audit_, std::move(entries), [call](absl::StatusOr<uint64_t> first) {
    if (!first.ok()) return call->done(AuditFailure(first.status()));
    call->response.set_request_id(call->request.request_id());
    call->response.set_audit_seq(*first);
    call->done(std::move(call->response));
  });
}

void Gateway::ListAgreements(const Caller& caller,
                             const accord::v1::ListAgreementsRequest& request,
                             Done<accord::v1::ListAgreementsResponse> done) {
  if (!caller.principal.ok()) {
    return Refuse(caller, "ListAgreements", caller.principal.status(), {},
                  [done](absl::Status s) { done(s); });
  }
  auto permit = Admit(caller);
  if (!permit.ok()) {
    return Refuse(caller, "ListAgreements", permit.status(), {},
                  [done](absl::Status s) { done(s); });
  }
  accord::v1::ListAgreementsResponse response;
  for (auto& a : policy_->Register(request.include_inactive())) {
    *response.add_agreements() = std::move(a);
  }
  AuditEntry e = BaseEntry(caller, "ListAgreements");
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  audit_->Append(std::move(e),
                 [response = std::move(response), done = std::move(done)](
                     absl::StatusOr<uint64_t> seq) mutable {
                   if (!seq.ok()) return done(AuditFailure(seq.status()));
                   done(std::move(response));
                 });
}

void Gateway::AuthoriseAuditor(const Caller& caller, const std::string& method,
                               const std::string& detail,
                               std::function<void(absl::Status)> done) {
  absl::Status status = caller.principal.status();
  if (status.ok() && (caller.principal->kind != PrincipalKind::kAuditor ||
                      !partnership_->IsAuditor(caller.principal->uri))) {
    status = absl::PermissionDeniedError(absl::StrCat(
        caller.principal->uri, " is not an auditor of this partnership"));
  }
  AuditEntry entry = BaseEntry(caller, method);
  entry.set_detail(detail);
  if (!status.ok())
    return Refuse(caller, method, status, std::move(entry), std::move(done));
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  audit_->Append(
      std::move(entry), [done = std::move(done)](absl::StatusOr<uint64_t> seq) {
        done(seq.ok() ? absl::OkStatus() : AuditFailure(seq.status()));
      });
}

}  // namespace accord::gateway
