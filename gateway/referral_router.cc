#include "gateway/referral_router.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
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

absl::Status AuditFailure(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat(
      "the audit log could not record this decision; nothing was done (",
      s.message(), ")"));
}

// Appends `entry` and gives `done` the response only once the entry is
// durable.
template <typename Resp>
void ReleaseWhenDurable(audit::AuditLog& log, AuditEntry entry, Resp resp,
                        Done<Resp> done) {
  log.Append(std::move(entry), [resp = std::move(resp), done = std::move(done)](
                                   absl::StatusOr<uint64_t> seq) mutable {
    if (!seq.ok()) return done(AuditFailure(seq.status()));
    done(std::move(resp));
  });
}

// What a party that is not the receiver may see: routing and status only.
Referral WithoutPayload(Referral r) {
  r.clear_payload();
  return r;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

ReferralRouter::ReferralRouter(
    std::shared_ptr<const PartnershipDirectory> partnership,
    policy::Engine* policy, audit::AuditLog* audit, HolderClients* agents,
    ReferralStore* store, const Clock* clock,
    std::map<std::string, std::string> referral_keys,
    ReferralRouterOptions options)
    : partnership_(std::move(partnership)),
      policy_(policy),
      audit_(audit),
      agents_(agents),
      store_(store),
      clock_(clock),
      referral_keys_(std::move(referral_keys)),
      options_(options) {}

ReferralRouter::~ReferralRouter() { Stop(); }

void ReferralRouter::Start() {
  absl::MutexLock lock(&mu_);
  if (worker_.joinable()) return;
  stopping_ = false;
  worker_ = std::thread([this] { Run(); });
}

void ReferralRouter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  // Calls in flight end within their deadline.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::set<int64_t>* busy) { return busy->empty(); }, &busy_));
}

void ReferralRouter::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

absl::StatusOr<std::string> ReferralRouter::CallerOrg(
    const Caller& caller) const {
  if (!caller.principal.ok()) return caller.principal.status();
  // A partner sends through its agent (agent identity) or straight from its
  // own system (org identity); either speaks for the organisation.
  if (caller.principal->kind != PrincipalKind::kOrg &&
      caller.principal->kind != PrincipalKind::kAgent) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller.principal->uri,
                     " is not an organisation's or agent's identity"));
  }
  if (partnership_->FindOrg(caller.principal->name) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("organisation '", caller.principal->name,
                     "' is not a member of this partnership"));
  }
  return caller.principal->name;
}

AuditEntry ReferralRouter::BaseEntry(const Caller& caller,
                                     const std::string& method) const {
  AuditEntry e;
  e.set_caller(caller.principal.ok() ? caller.principal->uri
                                     : caller.peer_uris);
  if (caller.principal.ok() &&
      (caller.principal->kind == PrincipalKind::kOrg ||
       caller.principal->kind == PrincipalKind::kAgent) &&
      partnership_->FindOrg(caller.principal->name) != nullptr) {
    e.set_caller_org(caller.principal->name);
  }
  *e.mutable_actor() = caller.actor;
  e.set_method(method);
  e.set_action(accord::v1::ACTION_REFERRAL);
  return e;
}

template <typename T>
void ReferralRouter::Refuse(AuditEntry entry, absl::Status status,
                            Done<T> done) {
  entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
  entry.set_deny_reason(std::string(status.message()));
  audit_->Append(std::move(entry), [status, done = std::move(done)](
                                       absl::StatusOr<uint64_t> seq) {
    done(seq.ok() ? status : AuditFailure(seq.status()));
  });
}

std::vector<std::string> ReferralRouter::PartiesToNotify(
    const Referral& r) const {
  std::vector<std::string> out;
  if (agents_->Knows(r.from_org())) out.push_back(r.from_org());
  bool delivered = false;
  for (const auto& h : r.history()) {
    if (h.state() == accord::v1::REFERRAL_STATE_DELIVERED) delivered = true;
  }
  if (delivered && agents_->Knows(r.to_org())) out.push_back(r.to_org());
  return out;
}

// ---------------------------------------------------------------------------
// Send

void ReferralRouter::Send(const Caller& caller,
                          const accord::v1::SendReferralRequest& request,
                          Done<accord::v1::SendReferralResponse> done) {
  using Resp = accord::v1::SendReferralResponse;
  const Referral& in = request.referral();
  AuditEntry entry = BaseEntry(caller, "SendReferral");
  entry.set_purpose(in.purpose().substr(0, 64));
  entry.set_referral_id(in.id().substr(0, 64));
  entry.set_holder(in.to_org().substr(0, 64));
  auto refuse = [&](absl::Status s) {
    Refuse<Resp>(entry, std::move(s), std::move(done));
  };

  auto org = CallerOrg(caller);
  if (!org.ok()) return refuse(org.status());
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
  if (!in.from_org().empty() && in.from_org() != *org) {
    return refuse(absl::PermissionDeniedError(
        absl::StrCat("field referral.from_org: '", in.from_org(),
                     "' is not the caller's organisation '", *org, "'")));
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
  if (in.to_org() == *org) {
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

  // The same referral again (a retry): answer as the first time.
  absl::StatusOr<std::optional<Referral>> existing = store_->Find(in.id());
  if (existing.ok() && !existing->has_value() &&
      !in.idempotency_key().empty()) {
    existing = store_->FindByKey(*org, in.idempotency_key());
  }
  if (!existing.ok()) return refuse(existing.status());
  if (existing->has_value()) {
    const Referral& r = **existing;
    if (r.from_org() != *org) {
      return refuse(absl::AlreadyExistsError(absl::StrCat(
          "field referral.id: '", in.id(), "' is already in use")));
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
    audit_->Append(std::move(entry), [resp, done = std::move(done)](
                                         absl::StatusOr<uint64_t> seq) mutable {
      if (!seq.ok()) return done(AuditFailure(seq.status()));
      resp.set_audit_seq(*seq);
      done(std::move(resp));
    });
    return;
  }

  // A referral onwards (A -> B -> C) continues one the sender received.
  if (!in.previous_referral_id().empty()) {
    auto prev = store_->Find(in.previous_referral_id());
    if (!prev.ok()) return refuse(prev.status());
    if (!prev->has_value() || (*prev)->to_org() != *org) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field referral.previous_referral_id: '", in.previous_referral_id(),
          "' is not a referral made to ", *org)));
    }
  }

  const absl::Time now = clock_->Now();
  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(*org);
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
  r.set_from_org(*org);
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
  sent.set_by_org(*org);
  *sent.mutable_actor() = caller.actor;
  ApplyTransition(r, std::move(sent));

  // Durable decision first, then the queue: nothing leaves the gateway
  // before its audit entry.
  audit_->Append(std::move(entry),
                 [this, r = std::move(r), now, done = std::move(done)](
                     absl::StatusOr<uint64_t> seq) mutable {
                   if (!seq.ok()) return done(AuditFailure(seq.status()));
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

void ReferralRouter::Update(const Caller& caller,
                            const accord::v1::UpdateReferralRequest& request,
                            Done<accord::v1::UpdateReferralResponse> done) {
  using Resp = accord::v1::UpdateReferralResponse;
  AuditEntry entry = BaseEntry(caller, "UpdateReferral");
  entry.set_referral_id(request.referral_id().substr(0, 64));
  entry.set_detail(StateName(request.status().state()));
  auto refuse = [&](absl::Status s) {
    Refuse<Resp>(entry, std::move(s), std::move(done));
  };
  auto org = CallerOrg(caller);
  if (!org.ok()) return refuse(org.status());
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
  const ReferralParty party = PartyOf(r, *org);
  if (party == ReferralParty::kOther) {
    // Not a party: the referral's existence is not confirmed.
    return refuse(absl::NotFoundError(
        absl::StrCat("no referral '", request.referral_id(), "' for ", *org)));
  }
  if (auto s = CheckTransition(r, request.status(), party); !s.ok())
    return refuse(s);

  const absl::Time now = clock_->Now();
  ReferralStatus status = request.status();
  *status.mutable_at() = ToProtoTime(now);
  status.set_by_org(*org);
  *status.mutable_actor() = caller.actor;
  if (status.state() == accord::v1::REFERRAL_STATE_CLOSED) {
    absl::StrAppend(entry.mutable_detail(), " ",
                    accord::v1::Outcome_Name(status.outcome()));
  }
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  const int expected = r.history_size();
  Referral after = r;
  ApplyTransition(after, status);
  std::vector<std::string> notify = PartiesToNotify(after);
  audit_->Append(std::move(entry), [this, id = r.id(), expected, status, notify,
                                    now, caller, done = std::move(done)](
                                       absl::StatusOr<uint64_t> seq) mutable {
    if (!seq.ok()) return done(AuditFailure(seq.status()));
    executor_.Post([this, id, expected, status, notify, now, caller, seq = *seq,
                    done = std::move(done)]() mutable {
      auto applied = store_->Apply(id, expected, status, notify, now);
      if (!applied.ok()) {
        // Lost a race with another change: record that it did not happen.
        AuditEntry undo = BaseEntry(caller, "UpdateReferral");
        undo.set_referral_id(id);
        undo.set_detail(absl::StrCat("change recorded at audit entry ", seq,
                                     " was not applied"));
        return Refuse<Resp>(std::move(undo), applied.status(), std::move(done));
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

void ReferralRouter::Get(const Caller& caller,
                         const accord::v1::GetReferralRequest& request,
                         Done<accord::v1::GetReferralResponse> done) {
  using Resp = accord::v1::GetReferralResponse;
  AuditEntry entry = BaseEntry(caller, "GetReferral");
  entry.set_referral_id(request.referral_id().substr(0, 64));
  auto refuse = [&](absl::Status s) {
    Refuse<Resp>(entry, std::move(s), std::move(done));
  };
  auto org = CallerOrg(caller);
  if (!org.ok()) return refuse(org.status());
  if (auto s = ValidateMessage(request); !s.ok()) return refuse(s);
  auto found = store_->Find(request.referral_id());
  if (!found.ok()) return refuse(found.status());
  absl::StatusOr<std::vector<Referral>> chain = std::vector<Referral>();
  if (found->has_value()) chain = store_->Chain(request.referral_id());
  if (!chain.ok()) return refuse(chain.status());
  // Every organisation on the chain may follow it.
  bool on_chain = false;
  for (const auto& r : *chain) {
    if (r.from_org() == *org || r.to_org() == *org) on_chain = true;
  }
  if (!found->has_value() || !on_chain) {
    return refuse(absl::NotFoundError(
        absl::StrCat("no referral '", request.referral_id(), "' for ", *org)));
  }
  const Referral& r = **found;
  entry.set_purpose(r.purpose());
  entry.set_holder(r.to_org());
  *entry.mutable_subjects() = r.subjects();
  entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  Resp resp;
  *resp.mutable_referral() = r.to_org() == *org ? r : WithoutPayload(r);
  if (request.include_chain()) {
    for (auto& c : *chain) *resp.add_chain() = WithoutPayload(std::move(c));
    entry.set_detail(absl::StrCat("with chain of ", resp.chain_size()));
  }
  ReleaseWhenDurable(*audit_, std::move(entry), std::move(resp),
                     std::move(done));
}

void ReferralRouter::GetKey(const Caller& caller,
                            const accord::v1::GetReferralKeyRequest& request,
                            Done<accord::v1::GetReferralKeyResponse> done) {
  using Resp = accord::v1::GetReferralKeyResponse;
  AuditEntry entry = BaseEntry(caller, "GetReferralKey");
  entry.set_holder(request.org_id().substr(0, 64));
  auto refuse = [&](absl::Status s) {
    Refuse<Resp>(entry, std::move(s), std::move(done));
  };
  auto org = CallerOrg(caller);
  if (!org.ok()) return refuse(org.status());
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
  ReleaseWhenDurable(*audit_, std::move(entry), std::move(resp),
                     std::move(done));
}

// ---------------------------------------------------------------------------
// Delivery

void ReferralRouter::Run() {
  while (true) {
    std::set<int64_t> busy;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      wake_ = false;
      busy = busy_;
    }
    const int room = options_.max_in_flight - static_cast<int>(busy.size());
    std::vector<ReferralTask> due;
    if (room > 0) {
      auto tasks = store_->DueTasks(clock_->Now(), busy, room);
      if (tasks.ok()) {
        due = std::move(*tasks);
      } else {
        std::fprintf(stderr, "accord-gateway: referral queue: %s\n",
                     std::string(tasks.status().message()).c_str());
      }
    }
    for (const auto& t : due) {
      {
        absl::MutexLock lock(&mu_);
        busy_.insert(t.id);
      }
      Dispatch(t);
    }
    absl::Duration wait = absl::Seconds(1);
    if (auto next = store_->NextDue(); next.ok() && next->has_value()) {
      wait = std::clamp(**next - clock_->Now(), absl::Milliseconds(10),
                        absl::Seconds(1));
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](ReferralRouter* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return self->wake_ || self->stopping_;
            },
            this),
        wait);
  }
}

void ReferralRouter::Finished(int64_t task_id) {
  absl::MutexLock lock(&mu_);
  busy_.erase(task_id);
  wake_ = true;
}

void ReferralRouter::Retry(const ReferralTask& task, const std::string& error,
                           absl::Time cap) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 0; i < task.attempts && backoff < options_.max_backoff; ++i)
    backoff *= 2;
  backoff = std::min(backoff, options_.max_backoff);
  const absl::Time next = std::min(clock_->Now() + backoff, cap);
  if (auto s = store_->RetryTask(task.id, next, error); !s.ok()) {
    std::fprintf(stderr, "accord-gateway: referral queue: %s\n",
                 std::string(s.message()).c_str());
  }
}

void ReferralRouter::AuditSystemEvent(const std::string& method,
                                      const Referral& r,
                                      const std::string& detail) {
  AuditEntry e;
  e.set_caller(SpiffeId(partnership_->id(), PrincipalKind::kGateway));
  e.set_method(method);
  e.set_action(accord::v1::ACTION_REFERRAL);
  e.set_purpose(r.purpose());
  e.set_referral_id(r.id());
  e.set_holder(r.to_org());
  *e.mutable_subjects() = r.subjects();
  e.set_agreement_id(r.agreement_id());
  e.set_agreement_version(r.agreement_version());
  e.set_rule_id(r.rule_id());
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  e.set_detail(detail);
  audit_->Append(std::move(e), [](absl::StatusOr<uint64_t> seq) {
    if (!seq.ok()) {
      std::fprintf(stderr, "accord-gateway: audit of a referral event: %s\n",
                   std::string(seq.status().message()).c_str());
    }
  });
}

void ReferralRouter::Dispatch(const ReferralTask& task) {
  auto found = store_->Find(task.referral_id);
  if (!found.ok() || !found->has_value()) {
    if (found.ok()) (void)store_->CompleteTask(task.id);
    return Finished(task.id);
  }
  Referral r = std::move(**found);
  if (task.kind == TaskKind::kNotify) {
    accord::v1::NotifyReferralStatusRequest req;
    const int carried = r.history_size();
    *req.mutable_referral() = std::move(r);
    agents_->NotifyReferralStatus(
        task.target_org, req, options_.call_deadline,
        [this, task, carried](grpc::Status status) {
          executor_.Post([this, task, carried, status] {
            if (status.ok()) {
              (void)store_->CompleteTask(task.id, carried);
            } else {
              Retry(task, status.error_message(), absl::InfiniteFuture());
            }
            Finished(task.id);
          });
        });
    return;
  }
  // Delivery: only while the referral waits for it.
  if (r.state() != accord::v1::REFERRAL_STATE_SENT) {
    (void)store_->CompleteTask(task.id);
    return Finished(task.id);
  }
  if (clock_->Now() >= FromProtoTime(r.deliver_by())) {
    Expire(task, r);
    return Finished(task.id);
  }
  accord::v1::DeliverReferralRequest req;
  *req.mutable_referral() = r;
  agents_->DeliverReferral(task.target_org, req, options_.call_deadline,
                           [this, task, r = std::move(r)](grpc::Status status) {
                             executor_.Post([this, task, r, status] {
                               OnDeliverResult(task, r, status);
                               Finished(task.id);
                             });
                           });
}

void ReferralRouter::OnDeliverResult(const ReferralTask& task,
                                     const Referral& r,
                                     const grpc::Status& status) {
  if (!status.ok()) {
    return Retry(task,
                 absl::StrCat(static_cast<int>(status.error_code()), ": ",
                              status.error_message()),
                 FromProtoTime(r.deliver_by()));
  }
  ReferralStatus delivered;
  delivered.set_state(accord::v1::REFERRAL_STATE_DELIVERED);
  *delivered.mutable_at() = ToProtoTime(clock_->Now());
  Referral after = r;
  ApplyTransition(after, delivered);
  auto applied = store_->Apply(r.id(), r.history_size(), delivered,
                               PartiesToNotify(after), clock_->Now(), task.id);
  if (!applied.ok()) {
    // Withdrawn meanwhile, or the store failed: the task stays or ends as the
    // referral's state says on the next pass.
    if (applied.status().code() != absl::StatusCode::kAborted) {
      Retry(task, std::string(applied.status().message()),
            absl::InfiniteFuture());
    }
    return;
  }
  AuditSystemEvent("DeliverReferral", r,
                   absl::StrCat("delivered to ", r.to_org(), " after ",
                                task.attempts + 1, " attempt(s)"));
}

void ReferralRouter::Expire(const ReferralTask& task, const Referral& r) {
  ReferralStatus expired;
  expired.set_state(accord::v1::REFERRAL_STATE_EXPIRED);
  *expired.mutable_at() = ToProtoTime(clock_->Now());
  expired.set_reason(absl::StrCat(
      "not delivered to ", r.to_org(), " within the time limit of rule ",
      r.rule_id(), " (", task.attempts, " attempts)"));
  Referral after = r;
  ApplyTransition(after, expired);
  auto applied = store_->Apply(r.id(), r.history_size(), expired,
                               PartiesToNotify(after), clock_->Now(), task.id);
  if (applied.ok()) {
    AuditSystemEvent("ExpireReferral", r, expired.reason());
    Wake();
  }
}

}  // namespace accord::gateway
