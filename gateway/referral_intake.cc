// Referral intake: the gateway methods partners' agents call (SendReferral,
// UpdateReferral, GetReferral, GetReferralKey). Each goes through the
// Pipeline, then runs on the router's own thread: the store is SQLite, and
// gRPC's threads must not wait on it.
#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gateway/referral_router.h"
#include "gateway/referral_state.h"
#include "linkage/tokens.h"
#include "runtime/identity.h"
#include "runtime/seal.h"
#include "runtime/textproto.h"

namespace accord::gateway {
namespace {

using accord::v1::AuditEntry;
using accord::v1::Referral;
using accord::v1::ReferralStatus;

bool ValidReferralId(const std::string& id) {
  if (id.size() < 8 || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

std::string StateName(accord::v1::ReferralState s) {
  const std::string& n = accord::v1::ReferralState_Name(s);
  constexpr size_t kPrefix = sizeof("REFERRAL_STATE_") - 1;
  return n.size() > kPrefix ? n.substr(kPrefix)
                            : absl::StrCat(static_cast<int>(s));
}

// What a party that is not the receiver may see: routing and status only.
Referral WithoutPayload(Referral r) {
  r.clear_payload();
  return r;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

using TokenKey = std::tuple<int, std::string>;

std::set<TokenKey> Tokens(const Referral& r) {
  std::set<TokenKey> out;
  for (const auto& t : r.subjects()) out.emplace(t.kind(), t.value());
  return out;
}

// The same person: at least one subject token in common.
bool SamePerson(const Referral& a, const Referral& b) {
  const std::set<TokenKey> ta = Tokens(a);
  for (const auto& t : b.subjects()) {
    if (ta.count({t.kind(), t.value()})) return true;
  }
  return false;
}

// What the gateway can compare of two sends with one idempotency key: the
// routing metadata (the sealed payload differs on every seal).
bool SameRouting(const Referral& a, const Referral& b) {
  return a.to_org() == b.to_org() && a.to_service() == b.to_service() &&
         a.purpose() == b.purpose() && Tokens(a) == Tokens(b) &&
         a.urgency() == b.urgency() &&
         a.previous_referral_id() == b.previous_referral_id() &&
         a.consent_reference() == b.consent_reference();
}

}  // namespace

ReferralRouter::ReferralRouter(Pipeline* pipeline, policy::Engine* policy,
                               HolderClients* agents, ReferralStore* store,
                               std::map<std::string, std::string> referral_keys,
                               ReferralRouterOptions options)
    : pipeline_(pipeline),
      partnership_(pipeline->partnership_ptr()),
      policy_(policy),
      audit_(pipeline->audit()),
      agents_(agents),
      store_(store),
      clock_(pipeline->clock()),
      referral_keys_(std::move(referral_keys)),
      options_(options) {}

ReferralRouter::~ReferralRouter() { Stop(); }

template <typename Resp, typename Body>
void ReferralRouter::Intake(
    const Method& method, Caller caller, Done<Resp> reply, Body body,
    const std::function<void(accord::v1::AuditEntry&)>& describe) {
  pipeline_->Run<Resp>(
      method, std::move(caller), std::move(reply),
      [this, body = std::move(body)](std::shared_ptr<const Call> call,
                                     Done<Resp> done) mutable {
        executor_.Post([call = std::move(call), done = std::move(done),
                        body = std::move(body)]() mutable {
          body(*call, std::move(done));
        });
      },
      describe);
}

void ReferralRouter::Send(Caller caller,
                          const accord::v1::SendReferralRequest& request,
                          Done<accord::v1::SendReferralResponse> reply) {
  Intake<accord::v1::SendReferralResponse>(
      methods::kSendReferral, std::move(caller), std::move(reply),
      [this, &request](const Call& call,
                       Done<accord::v1::SendReferralResponse> done) {
        DoSend(call, request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_referral_id(AuditText(request.referral().id()));
        e.set_purpose(AuditText(request.referral().purpose()));
        e.set_holder(AuditText(request.referral().to_org()));
      });
}

void ReferralRouter::Update(Caller caller,
                            const accord::v1::UpdateReferralRequest& request,
                            Done<accord::v1::UpdateReferralResponse> reply) {
  Intake<accord::v1::UpdateReferralResponse>(
      methods::kUpdateReferral, std::move(caller), std::move(reply),
      [this, &request](const Call& call,
                       Done<accord::v1::UpdateReferralResponse> done) {
        DoUpdate(call, request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_referral_id(AuditText(request.referral_id()));
      });
}

void ReferralRouter::Get(Caller caller,
                         const accord::v1::GetReferralRequest& request,
                         Done<accord::v1::GetReferralResponse> reply) {
  Intake<accord::v1::GetReferralResponse>(
      methods::kGetReferral, std::move(caller), std::move(reply),
      [this, &request](const Call& call,
                       Done<accord::v1::GetReferralResponse> done) {
        DoGet(call, request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_referral_id(AuditText(request.referral_id()));
      });
}

void ReferralRouter::GetKey(Caller caller,
                            const accord::v1::GetReferralKeyRequest& request,
                            Done<accord::v1::GetReferralKeyResponse> reply) {
  Intake<accord::v1::GetReferralKeyResponse>(
      methods::kGetReferralKey, std::move(caller), std::move(reply),
      [this, &request](const Call& call,
                       Done<accord::v1::GetReferralKeyResponse> done) {
        DoGetKey(call, request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_holder(AuditText(request.org_id()));
      });
}

// ---------------------------------------------------------------------------
// Send

void ReferralRouter::DoSend(const Call& call,
                            const accord::v1::SendReferralRequest& request,
                            Done<accord::v1::SendReferralResponse> done) {
  using Resp = accord::v1::SendReferralResponse;
  const Referral& in = request.referral();
  const std::string& org = call.org_id();
  AuditEntry entry = call.Entry();
  entry.set_purpose(AuditText(in.purpose()));
  entry.set_referral_id(AuditText(in.id()));
  entry.set_holder(AuditText(in.to_org()));
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(call, entry, std::move(s), std::move(done));
  };

  if (auto s = ValidateMessage(request); !s.ok()) return refuse(s);
  if (!ValidReferralId(in.id())) {
    return refuse(absl::InvalidArgumentError(
        "field referral.id: must be 8-64 lower-case letters, digits or '-'"));
  }
  for (int i = 0; i < in.subjects_size(); ++i) {
    if (auto s = linkage::ValidateTokenValue(in.subjects(i).value()); !s.ok()) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field referral.subjects[", i, "].value ", s.message())));
    }
  }
  *entry.mutable_subjects() = in.subjects();
  if (!in.from_org().empty() && in.from_org() != org) {
    return refuse(absl::PermissionDeniedError(
        absl::StrCat("field referral.from_org: '", in.from_org(),
                     "' is not the caller's organisation '", org, "'")));
  }
  if (!partnership_->HasPurpose(in.purpose())) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field referral.purpose: '", in.purpose(),
                     "' is not a purpose of this partnership")));
  }
  if (partnership_->FindOrg(in.to_org()) == nullptr) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field referral.to_org: '", in.to_org(),
                     "' is not a member of this partnership")));
  }
  if (in.to_org() == org) {
    return refuse(absl::InvalidArgumentError(
        "field referral.to_org: an organisation cannot refer to itself"));
  }
  if (!in.to_service().empty() &&
      partnership_->FindService(in.to_org(), in.to_service()) == nullptr) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field referral.to_service: '", in.to_service(),
                     "' is not a service of ", in.to_org())));
  }
  if (!agents_->Knows(in.to_org())) {
    return refuse(absl::FailedPreconditionError(
        absl::StrCat(in.to_org(), " has no agent to receive referrals")));
  }
  const auto& p = in.payload();
  if (p.ephemeral_public_key().size() != 32 || p.nonce().size() != 12 ||
      p.ciphertext().size() < 16) {
    return refuse(absl::InvalidArgumentError(
        "field referral.payload: not a sealed payload (32-byte ephemeral key, "
        "12-byte nonce, ciphertext with its 16-byte tag)"));
  }
  auto k = referral_keys_.find(in.to_org());
  if (k == referral_keys_.end()) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        in.to_org(),
        " publishes no referral key in the partnership file, so nothing can "
        "be sealed to it")));
  }
  if (p.recipient_key_id() != SealKeyId(k->second)) {
    return refuse(absl::InvalidArgumentError(absl::StrCat(
        "field referral.payload.recipient_key_id: not sealed to ", in.to_org(),
        "'s published referral key ", SealKeyId(k->second))));
  }

  // The same referral again (a retry): answer as the first time. The same
  // idempotency key for different routing is a mistake, not a retry.
  absl::StatusOr<std::optional<Referral>> existing =
      std::optional<Referral>();
  if (!in.idempotency_key().empty())
    existing = store_->FindByKey(org, in.idempotency_key());
  if (existing.ok() && !existing->has_value()) existing = store_->Find(in.id());
  if (!existing.ok()) return refuse(existing.status());
  if (existing->has_value()) {
    const Referral& r = **existing;
    if (r.from_org() != org) {
      return refuse(absl::AlreadyExistsError(absl::StrCat(
          "field referral.id: '", in.id(), "' is already in use")));
    }
    if (!SameRouting(r, in)) {
      return refuse(absl::AlreadyExistsError(absl::StrCat(
          in.idempotency_key().empty() || r.idempotency_key().empty()
              ? absl::StrCat("field referral.id: '", in.id(), "'")
              : absl::StrCat("field referral.idempotency_key: '",
                             in.idempotency_key(), "'"),
          " was already used for referral ", r.id(),
          " with different content (receiver, service, purpose, person, "
          "urgency, chain or consent); a new referral needs a new key")));
    }
    entry.set_referral_id(r.id());
    entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
    entry.set_agreement_id(r.agreement_id());
    entry.set_agreement_version(r.agreement_version());
    entry.set_rule_id(r.rule_id());
    entry.set_detail(
        "repeat of a referral already accepted; nothing new queued");
    Resp resp;
    resp.set_referral_id(r.id());
    resp.set_state(r.state());
    pipeline_->Release<Resp>(
        std::move(entry), std::move(resp), std::move(done),
        [](Resp& out, uint64_t seq) { out.set_audit_seq(seq); });
    return;
  }

  // A referral onwards (A -> B -> C) continues one the sender received, for
  // the same person.
  if (!in.previous_referral_id().empty()) {
    auto prev = store_->Find(in.previous_referral_id());
    if (!prev.ok()) return refuse(prev.status());
    if (!prev->has_value() || (*prev)->to_org() != org) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field referral.previous_referral_id: '", in.previous_referral_id(),
          "' is not a referral made to ", org)));
    }
    if (!SamePerson(**prev, in)) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field referral.previous_referral_id: referral '",
          in.previous_referral_id(),
          "' is about a different person (no subject token in common); a "
          "chain continues only for the same person")));
    }
  }

  const absl::Time now = clock_->Now();
  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(org);
  dreq.set_holder_org(in.to_org());
  dreq.set_action(accord::v1::ACTION_REFERRAL);
  dreq.set_purpose(in.purpose());
  if (request.has_no_consent())
    *dreq.mutable_no_consent() = request.no_consent();
  *dreq.mutable_at() = ToProtoTime(now);
  const accord::v1::Decision d = policy_->DecideProto(dreq);
  entry.set_agreement_id(d.agreement_id());
  entry.set_agreement_version(d.agreement_version());
  entry.set_rule_id(d.rule_id());
  entry.set_lawful_basis(d.lawful_basis());
  if (d.verdict() != accord::v1::VERDICT_ALLOW) {
    return refuse(absl::PermissionDeniedError(d.explanation()));
  }
  if (d.consent() == accord::v1::CONSENT_REQUIREMENT_REQUIRED &&
      in.consent_reference().empty()) {
    return refuse(absl::FailedPreconditionError(absl::StrCat(
        "field referral.consent_reference: rule ", d.rule_id(),
        " requires the person's consent; give the consent record, or rely on "
        "the rule's no-consent clause")));
  }
  if (d.consent() == accord::v1::CONSENT_REQUIREMENT_SET_ASIDE) {
    entry.set_no_consent_justification(request.no_consent().justification());
    *entry.mutable_no_consent_approver() = request.no_consent().approver();
  }
  entry.set_flag_for_review(d.flag_for_review());
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);

  Referral r = in;
  r.set_from_org(org);
  r.clear_history();
  *r.mutable_created_at() = ToProtoTime(now);
  const absl::Duration limit = d.has_delivery_limit()
                                   ? FromProtoDuration(d.delivery_limit())
                                   : options_.default_delivery_limit;
  *r.mutable_deliver_by() = ToProtoTime(now + limit);
  r.set_agreement_id(d.agreement_id());
  r.set_agreement_version(d.agreement_version());
  r.set_rule_id(d.rule_id());
  ReferralStatus sent;
  sent.set_state(accord::v1::REFERRAL_STATE_SENT);
  *sent.mutable_at() = ToProtoTime(now);
  sent.set_by_org(org);
  *sent.mutable_actor() = call.caller().actor;
  ApplyTransition(r, std::move(sent));

  // Durable decision first, then the queue: nothing leaves the gateway
  // before its audit entry.
  audit_->Append(std::move(entry), [this, r = std::move(r), now,
                                    done = std::move(done)](
                                       absl::StatusOr<uint64_t> seq) mutable {
    if (!seq.ok()) return done(pipeline_->AuditFailure(seq.status()));
    executor_.Post([this, r = std::move(r), now, seq = *seq,
                    done = std::move(done)]() mutable {
      auto inserted = store_->Insert(r, now);
      if (!inserted.ok()) return done(inserted.status());
      Resp resp;
      resp.set_referral_id(inserted->referral.id());
      resp.set_state(inserted->referral.state());
      resp.set_audit_seq(seq);
      Wake();
      done(std::move(resp));
    });
  });
}

// ---------------------------------------------------------------------------
// Update

void ReferralRouter::DoUpdate(const Call& call,
                              const accord::v1::UpdateReferralRequest& request,
                              Done<accord::v1::UpdateReferralResponse> done) {
  using Resp = accord::v1::UpdateReferralResponse;
  const std::string& org = call.org_id();
  AuditEntry entry = call.Entry();
  entry.set_referral_id(AuditText(request.referral_id()));
  entry.set_detail(StateName(request.status().state()));
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(call, entry, std::move(s), std::move(done));
  };
  if (auto s = ValidateMessage(request); !s.ok()) return refuse(s);
  auto found = store_->Find(request.referral_id());
  if (!found.ok()) return refuse(found.status());
  if (!found->has_value()) {
    return refuse(absl::NotFoundError(
        absl::StrCat("no referral '", request.referral_id(), "'")));
  }
  const Referral& r = **found;
  entry.set_purpose(r.purpose());
  entry.set_holder(r.to_org());
  *entry.mutable_subjects() = r.subjects();
  entry.set_agreement_id(r.agreement_id());
  entry.set_agreement_version(r.agreement_version());
  entry.set_rule_id(r.rule_id());
  const ReferralParty party = PartyOf(r, org);
  if (party == ReferralParty::kOther) {
    // Not a party: the referral's existence is not confirmed.
    return refuse(absl::NotFoundError(
        absl::StrCat("no referral '", request.referral_id(), "' for ", org)));
  }
  if (auto s = CheckTransition(r, request.status(), party); !s.ok())
    return refuse(s);

  const absl::Time now = clock_->Now();
  ReferralStatus status = request.status();
  *status.mutable_at() = ToProtoTime(now);
  status.set_by_org(org);
  *status.mutable_actor() = call.caller().actor;
  if (status.state() == accord::v1::REFERRAL_STATE_CLOSED) {
    absl::StrAppend(entry.mutable_detail(), " ",
                    accord::v1::Outcome_Name(status.outcome()));
  }
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  const int expected = r.history_size();
  Referral after = r;
  ApplyTransition(after, status);
  std::vector<std::string> notify = PartiesToNotify(after);
  AuditEntry undo = call.Entry();
  undo.set_referral_id(r.id());
  audit_->Append(std::move(entry), [this, id = r.id(), expected, status, notify,
                                    now, undo = std::move(undo),
                                    done = std::move(done)](
                                       absl::StatusOr<uint64_t> seq) mutable {
    if (!seq.ok()) return done(pipeline_->AuditFailure(seq.status()));
    executor_.Post([this, id, expected, status, notify, now, seq = *seq,
                    undo = std::move(undo), done = std::move(done)]() mutable {
      auto applied = store_->Apply(id, expected, status, notify, now);
      if (!applied.ok()) {
        // Lost a race with another change: record that it did not happen.
        undo.set_detail(absl::StrCat("change recorded at audit entry ", seq,
                                     " was not applied"));
        undo.set_decision(accord::v1::AUDIT_DECISION_DENY);
        undo.set_deny_reason(std::string(applied.status().message()));
        const absl::Status why = applied.status();
        audit_->Append(std::move(undo),
                       [this, why, done = std::move(done)](
                           absl::StatusOr<uint64_t> s) {
                         done(s.ok() ? why : pipeline_->AuditFailure(s.status()));
                       });
        return;
      }
      Resp resp;
      *resp.mutable_referral() = std::move(*applied);
      resp.set_audit_seq(seq);
      Wake();
      done(std::move(resp));
    });
  });
}

// ---------------------------------------------------------------------------
// Get, GetKey

void ReferralRouter::DoGet(const Call& call,
                           const accord::v1::GetReferralRequest& request,
                           Done<accord::v1::GetReferralResponse> done) {
  using Resp = accord::v1::GetReferralResponse;
  const std::string& org = call.org_id();
  AuditEntry entry = call.Entry();
  entry.set_referral_id(AuditText(request.referral_id()));
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(call, entry, std::move(s), std::move(done));
  };
  if (auto s = ValidateMessage(request); !s.ok()) return refuse(s);
  auto found = store_->Find(request.referral_id());
  if (!found.ok()) return refuse(found.status());
  absl::StatusOr<std::vector<Referral>> chain = std::vector<Referral>();
  if (found->has_value()) chain = store_->Chain(request.referral_id());
  if (!chain.ok()) return refuse(chain.status());
  // Every organisation on the chain may follow it.
  bool on_chain = false;
  for (const auto& r : *chain) {
    if (r.from_org() == org || r.to_org() == org) on_chain = true;
  }
  if (!found->has_value() || !on_chain) {
    return refuse(absl::NotFoundError(
        absl::StrCat("no referral '", request.referral_id(), "' for ", org)));
  }
  const Referral& r = **found;
  entry.set_purpose(r.purpose());
  entry.set_holder(r.to_org());
  *entry.mutable_subjects() = r.subjects();
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  Resp resp;
  *resp.mutable_referral() = r.to_org() == org ? r : WithoutPayload(r);
  if (request.include_chain()) {
    for (auto& c : *chain) *resp.add_chain() = WithoutPayload(std::move(c));
    entry.set_detail(absl::StrCat("with chain of ", resp.chain_size()));
  }
  pipeline_->Release(std::move(entry), std::move(resp), std::move(done));
}

void ReferralRouter::DoGetKey(const Call& call,
                              const accord::v1::GetReferralKeyRequest& request,
                              Done<accord::v1::GetReferralKeyResponse> done) {
  using Resp = accord::v1::GetReferralKeyResponse;
  AuditEntry entry = call.Entry();
  entry.set_holder(AuditText(request.org_id()));
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(call, entry, std::move(s), std::move(done));
  };
  if (auto s = ValidateMessage(request); !s.ok()) return refuse(s);
  auto it = referral_keys_.find(request.org_id());
  if (it == referral_keys_.end()) {
    return refuse(absl::NotFoundError(
        absl::StrCat("field org_id: '", request.org_id(),
                     "' publishes no referral key in the partnership file")));
  }
  Resp resp;
  resp.set_org_id(it->first);
  resp.set_x25519_public_key(it->second);
  resp.set_key_id(SealKeyId(it->second));
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  pipeline_->Release(std::move(entry), std::move(resp), std::move(done));
}

}  // namespace accord::gateway
