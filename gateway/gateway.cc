#include "gateway/gateway.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "linkage/tokens.h"
#include "policy/answer_check.h"
#include "policy/fields.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"

namespace accord::gateway {
namespace {

using accord::v1::AuditEntry;
using accord::v1::HolderAnswer;

std::string NewRequestId() { return HexEncode(RandomBytes(12)); }

// A holder's free text (its refusal reason) as the requester may see it:
// bounded, one line.
std::string Printable(absl::string_view text, size_t limit = 300) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) break;
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  }
  return out;
}

std::string CatalogueFieldNames() {
  std::vector<absl::string_view> names;
  for (const auto& f : policy::AllFields()) names.push_back(f.name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

struct Gateway::QueryCall {
  std::shared_ptr<const Call> call;
  // Owned by the transport, which keeps it until `done` has run.
  const accord::v1::QueryRequest* request = nullptr;
  std::string request_id;
  accord::v1::QueryResponse response;
  // One per answer, same order: the audit entry and, for holders asked, the
  // decision their answer is held to.
  std::vector<AuditEntry> entries;
  std::vector<policy::Decision> decisions;
  std::atomic<int> outstanding{0};
  Done<accord::v1::QueryResponse> done;
};

Gateway::Gateway(Pipeline* pipeline, policy::Engine* policy,
                 HolderClients* holders, GatewayOptions options)
    : pipeline_(pipeline),
      policy_(policy),
      holders_(holders),
      options_(options) {}

void Gateway::Query(Caller caller, const accord::v1::QueryRequest& request,
                    Done<accord::v1::QueryResponse> reply) {
  pipeline_->Run<accord::v1::QueryResponse>(
      methods::kQuery, std::move(caller), std::move(reply),
      [this, &request](std::shared_ptr<const Call> call,
                       Done<accord::v1::QueryResponse> done) {
        RunQuery(std::move(call), request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_request_id(AuditText(request.request_id()));
        e.set_purpose(AuditText(request.purpose()));
      });
}

void Gateway::RunQuery(std::shared_ptr<const Call> call,
                       const accord::v1::QueryRequest& req,
                       Done<accord::v1::QueryResponse> done) {
  auto q = std::make_shared<QueryCall>();
  q->call = call;
  q->request = &req;
  q->request_id = req.request_id().empty() ? NewRequestId() : req.request_id();
  q->done = std::move(done);
  const PartnershipDirectory& partnership = pipeline_->partnership();

  AuditEntry base = call->Entry();
  base.set_request_id(AuditText(q->request_id));
  base.set_purpose(AuditText(req.purpose()));
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(*call, base, std::move(s), q->done);
  };

  if (auto s = ValidateMessage(req); !s.ok()) return refuse(s);
  for (int i = 0; i < req.subjects_size(); ++i) {
    if (auto s = linkage::ValidateTokenValue(req.subjects(i).value());
        !s.ok()) {
      return refuse(absl::InvalidArgumentError(
          absl::StrCat("field subjects[", i, "].value ", s.message())));
    }
  }
  *base.mutable_subjects() = req.subjects();
  if (!partnership.HasPurpose(req.purpose())) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field purpose: '", req.purpose(),
                     "' is not a purpose of this partnership")));
  }
  for (int i = 0; i < req.fields_size(); ++i) {
    if (policy::FindField(req.fields(i)) == nullptr) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field fields[", i, "]: '", req.fields(i),
          "' is not a field of the partnership's catalogue; the fields are: ",
          CatalogueFieldNames())));
    }
  }

  // Which holders to ask: those named, or every holder some agreement could
  // allow.
  const absl::Time now = pipeline_->clock()->Now();
  std::vector<std::string> holders;
  if (req.holders_size() > 0) {
    for (const auto& h : req.holders()) {
      if (partnership.FindOrg(h) == nullptr) {
        return refuse(absl::InvalidArgumentError(absl::StrCat(
            "field holders: '", h, "' is not a member of this partnership")));
      }
      holders.push_back(h);
    }
  } else {
    holders = policy_->CandidateHolders(
        call->org_id(), accord::v1::ACTION_QUERY, req.purpose(), now);
  }

  // One decision request for every holder: views into the query.
  policy::NoConsentAssertion assertion;
  if (req.has_no_consent())
    assertion = policy::NoConsentAssertion::FromProto(req.no_consent());
  policy::Request decide;
  decide.requester_org = call->org_id();
  decide.action = accord::v1::ACTION_QUERY;
  decide.purpose = req.purpose();
  for (const auto& f : req.fields()) decide.AskField(f);
  for (int c : req.categories())
    decide.AskCategory(static_cast<accord::v1::DataCategory>(c));
  decide.involvement_only = req.mode() == accord::v1::QUERY_MODE_INVOLVEMENT;
  decide.no_consent = req.has_no_consent() ? &assertion : nullptr;
  decide.at = now;

  std::vector<int> asked;  // answer indices of the holders to call
  std::string first_denial;
  for (const auto& holder : holders) {
    if (holder == call->org_id()) continue;  // a partner asks its own agent
    decide.holder_org = holder;
    policy::Decision d = policy_->Decide(decide);
    HolderAnswer* answer = q->response.add_answers();
    answer->set_holder(holder);
    if (const auto* o = partnership.FindOrg(holder))
      answer->set_holder_name(o->name());
    AuditEntry entry = base;
    entry.set_holder(holder);
    entry.set_agreement_id(std::string(d.agreement_id()));
    entry.set_agreement_version(d.agreement_version());
    entry.set_rule_id(std::string(d.rule_id()));
    entry.set_lawful_basis(d.lawful_basis());
    if (!d.allowed()) {
      const std::string why = d.Explanation();
      answer->set_status(accord::v1::HOLDER_STATUS_DENIED);
      answer->set_detail(why);
      entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
      entry.set_deny_reason(why);
      if (first_denial.empty()) first_denial = why;
    } else {
      answer->set_agreement_id(std::string(d.agreement_id()));
      answer->set_agreement_version(d.agreement_version());
      answer->set_rule_id(std::string(d.rule_id()));
      entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
      entry.set_flag_for_review(d.flag_for_review);
      if (d.consent == accord::v1::CONSENT_REQUIREMENT_SET_ASIDE) {
        entry.set_no_consent_justification(req.no_consent().justification());
        *entry.mutable_no_consent_approver() = req.no_consent().approver();
      }
      if (!holders_->Knows(holder)) {
        answer->set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
        answer->set_detail("this organisation has no agent to ask");
      } else {
        asked.push_back(q->response.answers_size() - 1);
      }
    }
    q->entries.push_back(std::move(entry));
    q->decisions.push_back(std::move(d));
  }

  if (asked.empty()) {
    return refuse(absl::PermissionDeniedError(
        !first_denial.empty()
            ? first_denial
            : absl::StrCat("no agreement permits ", call->org_id(),
                           " to query any holder for '", req.purpose(), "'")));
  }

  // Holders answer within the configured deadline, and never after the
  // caller has stopped waiting: a tenth of the caller's remaining time (at
  // least 50 ms) is kept to audit the decisions and reply.
  const absl::Duration holder_deadline =
      call->HolderDeadline(options_.holder_deadline, now);

  // The part of the holder request every holder shares, built once.
  accord::v1::DiscloseRequest common;
  common.set_request_id(q->request_id);
  common.set_requester_org(call->org_id());
  common.set_purpose(req.purpose());
  *common.mutable_subjects() = req.subjects();
  common.set_mode(req.mode());
  *common.mutable_fields() = req.fields();
  *common.mutable_categories() = req.categories();
  if (req.has_no_consent()) *common.mutable_no_consent() = req.no_consent();
  *common.mutable_actor() = call->caller().actor;

  q->outstanding = static_cast<int>(asked.size());
  for (size_t i = 0; i < asked.size(); ++i) {
    const int index = asked[i];
    accord::v1::DiscloseRequest dr =
        i + 1 == asked.size() ? std::move(common) : common;
    *dr.mutable_decision() = q->decisions[index].ToProto();
    holders_->Disclose(
        q->response.answers(index).holder(), std::move(dr), holder_deadline,
        [this, q, index](absl::Status status,
                         accord::v1::DiscloseResponse answer) {
          OnAnswer(q, index, std::move(status), std::move(answer));
        });
  }
}

void Gateway::OnAnswer(const std::shared_ptr<QueryCall>& q, int index,
                       absl::Status status, accord::v1::DiscloseResponse resp) {
  HolderAnswer* a = q->response.mutable_answers(index);
  AuditEntry& e = q->entries[index];
  if (!status.ok()) {
    a->set_status(status.code() == absl::StatusCode::kDeadlineExceeded
                      ? accord::v1::HOLDER_STATUS_TIMED_OUT
                      : accord::v1::HOLDER_STATUS_UNAVAILABLE);
    a->set_detail(std::string(status.message()));
    e.set_detail(a->detail());
  } else {
    // Only an answer carries content; whatever the plan does not release
    // is dropped here, before anything reaches the requester.
    std::vector<std::string> over;
    const bool valid_status =
        resp.status() == accord::v1::HOLDER_STATUS_ANSWERED ||
        resp.status() == accord::v1::HOLDER_STATUS_NO_MATCH ||
        resp.status() == accord::v1::HOLDER_STATUS_REFUSED;
    if (resp.status() != accord::v1::HOLDER_STATUS_ANSWERED) {
      if (resp.fields_size() > 0 || resp.records_size() > 0 ||
          resp.involvement_size() > 0) {
        over.push_back("content with a non-answer");
      }
      resp.clear_fields();
      resp.clear_records();
      resp.clear_involvement();
    } else if (const auto* holder =
                   pipeline_->partnership().FindOrg(a->holder())) {
      over = policy::HoldToPlan(q->decisions[index], *holder, &resp);
    }
    if (!valid_status) {
      a->set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
      a->set_detail("the holder's agent gave an answer of no known status");
    } else {
      a->set_status(resp.status());
      a->set_detail(Printable(resp.detail()));
    }
    *a->mutable_fields() = std::move(*resp.mutable_fields());
    *a->mutable_records() = std::move(*resp.mutable_records());
    *a->mutable_withheld() = std::move(*resp.mutable_withheld());
    *a->mutable_involvement() = std::move(*resp.mutable_involvement());
    a->set_consent_set_aside(resp.consent_set_aside());
    if (!over.empty()) {
      over_shared_.fetch_add(1, std::memory_order_relaxed);
      a->set_over_shared(true);
      for (const auto& item : over) {
        auto* w = a->add_withheld();
        w->set_what(item);
        w->set_reason(
            "returned by the holder outside the agreed plan; not released");
        e.add_over_shared(item);
      }
    }
    for (const auto& [name, value] : a->fields()) e.add_fields_released(name);
    std::sort(e.mutable_fields_released()->begin(),
              e.mutable_fields_released()->end());
    for (const auto& r : a->records()) {
      e.add_fields_released(
          absl::StrCat("record:", accord::v1::DataCategory_Name(r.category())));
    }
    e.set_record_count(a->records_size());
    if (a->status() == accord::v1::HOLDER_STATUS_REFUSED) {
      e.set_decision(accord::v1::AUDIT_DECISION_DENY);
      e.set_deny_reason(absl::StrCat("holder refused: ", a->detail()));
    }
    e.set_detail(over.empty()
                     ? accord::v1::HolderStatus_Name(a->status())
                     : absl::StrCat(accord::v1::HolderStatus_Name(a->status()),
                                    "; the holder over-shared, dropped: ",
                                    absl::StrJoin(over, ", ")));
  }
  if (q->outstanding.fetch_sub(1) == 1) FinishQuery(q);
}

void Gateway::FinishQuery(const std::shared_ptr<QueryCall>& q) {
  // Release only after every decision of this call is durable. The entries
  // and the response are not read again: move them.
  std::string request_id = q->request_id;
  pipeline_->Release<accord::v1::QueryResponse>(
      std::move(q->entries), std::move(q->response), std::move(q->done),
      [request_id](accord::v1::QueryResponse& r, uint64_t seq) {
        r.set_request_id(request_id);
        r.set_audit_seq(seq);
      });
}

void Gateway::ListAgreements(Caller caller,
                             const accord::v1::ListAgreementsRequest& request,
                             Done<accord::v1::ListAgreementsResponse> reply) {
  pipeline_->Run<accord::v1::ListAgreementsResponse>(
      methods::kListAgreements, std::move(caller), std::move(reply),
      [this, &request](std::shared_ptr<const Call> call,
                       Done<accord::v1::ListAgreementsResponse> done) {
        accord::v1::ListAgreementsResponse response;
        for (auto& a : policy_->Register(request.include_inactive())) {
          *response.add_agreements() = std::move(a);
        }
        AuditEntry e = call->Entry();
        e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
        pipeline_->Release(std::move(e), std::move(response), std::move(done));
      });
}

}  // namespace accord::gateway
