#include "agent/referrals.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/disclosure.h"
#include "agent/input_text.h"
#include "policy/fields.h"
#include "runtime/crypto.h"
#include "runtime/identity.h"
#include "runtime/status.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {

using accord::v1::DataCategory;
using accord::v1::Referral;
using accord::v1::ReferralBox;

std::string CategoryName(DataCategory c) {
  return accord::v1::DataCategory_Name(c).substr(
      std::string("DATA_CATEGORY_").size());
}

bool PlanReleasesField(const accord::v1::Decision& d, const std::string& f) {
  for (const auto& r : d.plan().releases()) {
    if (r.has_field() && r.field() == f &&
        r.transform() != accord::v1::TRANSFORM_DROP)
      return true;
  }
  return false;
}

bool PlanReleasesCategory(const accord::v1::Decision& d, DataCategory c) {
  for (const auto& r : d.plan().releases()) {
    if (r.target_case() == accord::v1::Release::kCategory &&
        r.category() == c && r.transform() != accord::v1::TRANSFORM_DROP)
      return true;
  }
  return false;
}

// A gRPC call to the gateway whose state lives until its callback runs.
template <typename Req, typename Resp>
struct GatewayCall {
  grpc::ClientContext ctx;
  Req request;
  Resp response;
};

// Two sends of one referral: the same receiver, service, purpose, person
// (tokens), urgency and chain.
bool SameRouting(const Referral& a, const Referral& b) {
  auto tokens = [](const Referral& r) {
    std::set<std::pair<int, std::string>> out;
    for (const auto& t : r.subjects()) out.emplace(t.kind(), t.value());
    return out;
  };
  return a.to_org() == b.to_org() && a.to_service() == b.to_service() &&
         a.purpose() == b.purpose() && a.urgency() == b.urgency() &&
         a.previous_referral_id() == b.previous_referral_id() &&
         tokens(a) == tokens(b);
}

void SetActor(grpc::ClientContext& ctx, const accord::v1::Actor& actor) {
  if (!actor.user_id().empty())
    ctx.AddMetadata(kUserMetadataKey, actor.user_id());
  if (!actor.role().empty()) ctx.AddMetadata(kRoleMetadataKey, actor.role());
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  // A gateway restarting is waited for (within the deadline), not failed at
  // once.
  ctx.set_wait_for_ready(true);
}

}  // namespace

// ---------------------------------------------------------------------------
// ReferralEvents

ReferralEvents::ReferralEvents() : ticker_([this] { Tick(); }) {}

ReferralEvents::~ReferralEvents() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  ticker_.join();
}

int64_t ReferralEvents::Subscribe(Listener listener, absl::Duration heartbeat) {
  absl::MutexLock lock(&mu_);
  const int64_t id = next_++;
  listeners_[id] = {std::move(listener), heartbeat, absl::Now() + heartbeat};
  return id;
}

void ReferralEvents::Unsubscribe(int64_t id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

void ReferralEvents::Publish() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, s] : listeners_) s.listener(true);
}

void ReferralEvents::Tick() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    absl::Time due = absl::InfiniteFuture();
    for (const auto& [id, s] : listeners_) due = std::min(due, s.next_tick);
    // Woken early by a new subscription (its tick may be sooner) or stop.
    const size_t count = listeners_.size();
    auto changed = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || listeners_.size() != count;
    };
    if (mu_.AwaitWithDeadline(absl::Condition(&changed), due)) continue;
    const absl::Time now = absl::Now();
    for (auto& [id, s] : listeners_) {
      if (s.next_tick > now) continue;
      s.listener(false);
      s.next_tick = now + s.heartbeat;
    }
  }
}

// ---------------------------------------------------------------------------
// Referrals

Referrals::Referrals(
    std::string self_org,
    std::shared_ptr<const PartnershipDirectory> partnership, AgentStore* store,
    const policy::Engine* policy,
    std::map<std::string, std::string> referral_keys,
    std::optional<X25519KeyPair> own_key,
    std::unique_ptr<accord::v1::Gateway::StubInterface> gateway,
    const Clock* clock, AgentAudit* audit)
    : self_org_(std::move(self_org)),
      partnership_(std::move(partnership)),
      store_(store),
      policy_(policy),
      referral_keys_(std::move(referral_keys)),
      own_key_(std::move(own_key)),
      gateway_(std::move(gateway)),
      clock_(clock),
      audit_(audit) {}

accord::v1::ReferralView Referrals::View(const Referral& referral) const {
  accord::v1::ReferralView view;
  *view.mutable_referral() = referral;
  if (referral.to_org() == self_org_ && own_key_.has_value()) {
    auto opened =
        Open(*own_key_, referral.payload(),
             ReferralAssociatedData(referral.id(), referral.from_org(),
                                    referral.to_org()));
    if (opened.ok()) {
      view.mutable_content()->ParseFromString(*opened);
    }
  }
  // The sealed bytes are of no use to the partner's systems.
  view.mutable_referral()->clear_payload();
  return view;
}

void Referrals::Stored() { events_.Publish(); }

absl::StatusOr<Referral> Referrals::Prepare(
    const accord::v1::LocalSendReferralRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  const auto* to = partnership_->FindOrg(request.to_org());
  if (to == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("field to_org: '", request.to_org(),
                     "' is not a member of this partnership"));
  }
  auto key = referral_keys_.find(request.to_org());
  if (key == referral_keys_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("field to_org: ", request.to_org(),
                     " publishes no referral key in the partnership file"));
  }
  auto tokens = store_->TokensOf(request.subject_local_id());
  if (!tokens.ok()) return tokens.status();

  // This agent's own copy of the agreements decides what may travel.
  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(self_org_);
  dreq.set_holder_org(request.to_org());
  dreq.set_action(accord::v1::ACTION_REFERRAL);
  dreq.set_purpose(request.purpose());
  if (request.has_no_consent())
    *dreq.mutable_no_consent() = request.no_consent();
  *dreq.mutable_at() = ToProtoTime(clock_->Now());
  const accord::v1::Decision d = policy_->DecideProto(dreq);
  if (d.verdict() != accord::v1::VERDICT_ALLOW) {
    return absl::PermissionDeniedError(d.explanation());
  }

  accord::v1::ReferralContent content = request.content();
  std::set<DataCategory> categories;
  for (const auto& [name, value] : content.contact_details()) {
    const auto* spec = policy::FindField(name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("field content.contact_details: '", name,
                       "' is not in the field catalogue"));
    }
    if (!PlanReleasesField(d, name)) {
      return absl::PermissionDeniedError(
          absl::StrCat("field content.contact_details: rule ", d.rule_id(),
                       " does not release '", name, "' to ", request.to_org()));
    }
    categories.insert(spec->category);
  }
  if (content.needs_size() > 0) {
    if (!PlanReleasesCategory(d, accord::v1::DATA_CATEGORY_NEEDS)) {
      return absl::PermissionDeniedError(
          absl::StrCat("field content.needs: rule ", d.rule_id(),
                       " does not release NEEDS to ", request.to_org()));
    }
    categories.insert(accord::v1::DATA_CATEGORY_NEEDS);
  }
  if (!content.case_summary().empty()) {
    if (!PlanReleasesCategory(d, accord::v1::DATA_CATEGORY_CASE_SUMMARY)) {
      return absl::PermissionDeniedError(
          absl::StrCat("field content.case_summary: rule ", d.rule_id(),
                       " does not release CASE_SUMMARY to ", request.to_org()));
    }
    categories.insert(accord::v1::DATA_CATEGORY_CASE_SUMMARY);
  }

  // Her consent, found where it was recorded: here.
  std::string consent_id;
  if (d.consent() == accord::v1::CONSENT_REQUIREMENT_REQUIRED) {
    auto consents = store_->Consents(request.subject_local_id());
    if (!consents.ok()) return consents.status();
    const absl::Time now = clock_->Now();
    for (const auto& c : *consents) {
      bool covers = true;
      for (DataCategory cat : categories) {
        covers = covers &&
                 Discloser::ConsentCovers(c, *to, request.purpose(), cat, now);
      }
      if (categories.empty()) {
        covers = Discloser::ConsentCovers(
            c, *to, request.purpose(), accord::v1::DATA_CATEGORY_IDENTITY, now);
      }
      if (covers) {
        consent_id = c.id();
        break;
      }
    }
    if (consent_id.empty()) {
      std::vector<std::string> names;
      for (DataCategory c : categories) names.push_back(CategoryName(c));
      return absl::FailedPreconditionError(absl::StrCat(
          "no current consent of subject '", request.subject_local_id(),
          "' covers a referral to ", request.to_org(), " for '",
          request.purpose(), "' of ", absl::StrJoin(names, ", "),
          "; record her consent, or rely on the rule's no-consent clause"));
    }
    content.set_consent_reference(consent_id);
  }
  if (!content.has_referrer_contact()) {
    if (const auto* self = partnership_->FindOrg(self_org_))
      *content.mutable_referrer_contact() = self->contact();
  }

  // Ids are random, never derived from the caller's key: a key names a
  // referral only together with its content (the gateway and Send check).
  Referral r;
  r.set_id(absl::StrCat("ref-", HexEncode(RandomBytes(12))));
  r.set_idempotency_key(request.idempotency_key());
  r.set_from_org(self_org_);
  r.set_to_org(request.to_org());
  r.set_to_service(request.to_service());
  r.set_purpose(request.purpose());
  for (const auto& t : *tokens) *r.add_subjects() = t;
  r.set_urgency(request.urgency());
  r.set_previous_referral_id(request.previous_referral_id());
  r.set_consent_reference(consent_id);
  auto sealed = Seal(key->second, content.SerializeAsString(),
                     ReferralAssociatedData(r.id(), r.from_org(), r.to_org()));
  if (!sealed.ok()) return sealed.status();
  *r.mutable_payload() = std::move(*sealed);
  return r;
}

void Referrals::Send(const accord::v1::LocalSendReferralRequest& request,
                     const accord::v1::Actor& actor,
                     ReferralDone<accord::v1::SendReferralResponse> done) {
  if (gateway_ == nullptr) {
    return done(absl::FailedPreconditionError(
        "this agent has no gateway_address configured"));
  }
  auto referral = Prepare(request);
  if (!referral.ok())
    return done(audit_->ReferralRefused(request, actor, referral.status()));
  if (!request.idempotency_key().empty()) {
    // The same key with the same routing is a retry: answered as the first
    // time. With anything else it is a mistake that must not pass as sent.
    auto existing = store_->FindOutboxByKey(request.idempotency_key());
    if (!existing.ok()) return done(existing.status());
    if (existing->has_value()) {
      const Referral& earlier = (*existing)->referral;
      if (!SameRouting(earlier, *referral)) {
        return done(audit_->ReferralRefused(
            request, actor,
            absl::AlreadyExistsError(absl::StrCat(
                "field idempotency_key: '", request.idempotency_key(),
                "' was already used for referral ", earlier.id(),
                " with different content (receiver, service, purpose, "
                "person, urgency or chain); a new referral needs a new key"))));
      }
      accord::v1::SendReferralResponse resp;
      resp.set_referral_id(earlier.id());
      resp.set_state(earlier.state());
      return done(std::move(resp));
    }
  }
  if (auto s = audit_->ReferralSending(request, *referral, actor); !s.ok())
    return done(s);

  using Call = GatewayCall<accord::v1::SendReferralRequest,
                           accord::v1::SendReferralResponse>;
  auto* call = new Call;
  SetActor(call->ctx, actor);
  *call->request.mutable_referral() = std::move(*referral);
  if (request.has_no_consent())
    *call->request.mutable_no_consent() = request.no_consent();
  gateway_->async()->SendReferral(
      &call->ctx, &call->request, &call->response,
      [this, call, actor, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call> owned(call);
        audit_->ReferralSent(
            call->request.referral(), actor,
            status.ok() ? absl::StatusOr<accord::v1::SendReferralResponse>(
                              call->response)
                        : FromGrpcStatus(status));
        if (!status.ok()) return done(FromGrpcStatus(status));
        // The outbox copy: as sent, until the gateway reports changes. A
        // repeat of an earlier send is stored under the id the gateway knows.
        Referral r = call->request.referral();
        if (!call->response.referral_id().empty())
          r.set_id(call->response.referral_id());
        accord::v1::ReferralStatus sent;
        sent.set_state(call->response.state());
        *sent.mutable_at() = ToProtoTime(clock_->Now());
        sent.set_by_org(self_org_);
        *sent.mutable_actor() = actor;
        r.set_state(call->response.state());
        *r.add_history() = std::move(sent);
        auto changed =
            store_->MergeReferral(r, accord::v1::REFERRAL_BOX_OUTBOX);
        if (!changed.ok()) return done(changed.status());
        if (*changed) Stored();
        done(std::move(call->response));
      });
}

absl::StatusOr<accord::v1::ListReferralsResponse> Referrals::List(
    const accord::v1::ListReferralsRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  int64_t after = 0;
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &after)) {
    return absl::InvalidArgumentError("field page_token: not a page token");
  }
  const int limit =
      request.page_size() == 0
          ? 100
          : static_cast<int>(std::min(request.page_size(), 1000u));
  auto rows =
      store_->ListReferrals(request.box(), request.state(), after, limit + 1);
  if (!rows.ok()) return rows.status();
  accord::v1::ListReferralsResponse resp;
  for (size_t i = 0; i < rows->size() && static_cast<int>(i) < limit; ++i) {
    *resp.add_referrals() = View((*rows)[i].referral);
    if (static_cast<int>(i) == limit - 1 &&
        static_cast<int>(rows->size()) > limit) {
      resp.set_next_page_token(absl::StrCat((*rows)[i].seq));
    }
  }
  return resp;
}

void Referrals::Update(const accord::v1::UpdateReferralRequest& request,
                       const accord::v1::Actor& actor,
                       ReferralDone<accord::v1::UpdateReferralResponse> done) {
  if (gateway_ == nullptr) {
    return done(absl::FailedPreconditionError(
        "this agent has no gateway_address configured"));
  }
  if (auto s = ValidateLocalRequest(request); !s.ok()) return done(s);
  using Call = GatewayCall<accord::v1::UpdateReferralRequest,
                           accord::v1::UpdateReferralResponse>;
  auto* call = new Call;
  SetActor(call->ctx, actor);
  call->request = request;
  gateway_->async()->UpdateReferral(
      &call->ctx, &call->request, &call->response,
      [this, call, done = std::move(done)](grpc::Status status) {
        std::unique_ptr<Call> owned(call);
        if (!status.ok()) return done(FromGrpcStatus(status));
        const Referral& r = call->response.referral();
        const ReferralBox box = r.to_org() == self_org_
                                    ? accord::v1::REFERRAL_BOX_INBOX
                                    : accord::v1::REFERRAL_BOX_OUTBOX;
        auto changed = store_->MergeReferral(r, box);
        if (!changed.ok()) return done(changed.status());
        if (*changed) Stored();
        accord::v1::UpdateReferralResponse resp = std::move(call->response);
        resp.mutable_referral()->clear_payload();
        done(std::move(resp));
      });
}

absl::StatusOr<accord::v1::DeliverReferralResponse> Referrals::Deliver(
    const accord::v1::DeliverReferralRequest& request) {
  if (auto s = ValidateMessage(request); !s.ok()) return s;
  const Referral& r = request.referral();
  if (r.to_org() != self_org_) {
    return absl::PermissionDeniedError(absl::StrCat(
        "referral ", r.id(), " is for ", r.to_org(), ", not ", self_org_));
  }
  if (!own_key_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(self_org_, "'s agent has no referral_key_file"));
  }
  // Defence in depth: this agent's own agreements must permit the pathway.
  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(r.from_org());
  dreq.set_holder_org(self_org_);
  dreq.set_action(accord::v1::ACTION_REFERRAL);
  dreq.set_purpose(r.purpose());
  *dreq.mutable_at() = r.created_at();
  const accord::v1::Decision d = policy_->DecideProto(dreq);
  if (d.verdict() != accord::v1::VERDICT_ALLOW) {
    return absl::PermissionDeniedError(
        absl::StrCat("this agent's agreements do not permit the pathway: ",
                     d.explanation()));
  }
  auto opened = Open(*own_key_, r.payload(),
                     ReferralAssociatedData(r.id(), r.from_org(), r.to_org()));
  if (!opened.ok()) return opened.status();
  auto changed = store_->MergeReferral(r, accord::v1::REFERRAL_BOX_INBOX);
  if (!changed.ok()) return changed.status();
  if (*changed) Stored();
  accord::v1::DeliverReferralResponse resp;
  resp.set_already_delivered(!*changed);
  return resp;
}

absl::StatusOr<accord::v1::NotifyReferralStatusResponse> Referrals::Notify(
    const accord::v1::NotifyReferralStatusRequest& request) {
  if (auto s = ValidateMessage(request); !s.ok()) return s;
  const Referral& r = request.referral();
  ReferralBox insert = accord::v1::REFERRAL_BOX_UNSPECIFIED;
  if (r.from_org() == self_org_) {
    // The notice may overtake the gateway's answer to SendReferral.
    insert = accord::v1::REFERRAL_BOX_OUTBOX;
  } else if (r.to_org() != self_org_) {
    return absl::PermissionDeniedError(
        absl::StrCat("referral ", r.id(), " is not to or from ", self_org_));
  }
  // An inbox referral arrives only by delivery, never by a notice.
  auto changed = store_->MergeReferral(r, insert);
  if (!changed.ok()) return changed.status();
  if (*changed) Stored();
  return accord::v1::NotifyReferralStatusResponse();
}

// ---------------------------------------------------------------------------
// Watching

namespace {
constexpr absl::Duration kDefaultHeartbeat = absl::Seconds(15);
constexpr absl::Duration kMinHeartbeat = absl::Seconds(1);
constexpr absl::Duration kMaxHeartbeat = absl::Minutes(10);
}  // namespace

absl::StatusOr<std::unique_ptr<ReferralWatch>> Referrals::Watch(
    const accord::v1::WatchReferralsRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  std::optional<int64_t> after;
  if (request.has_after_cursor()) {
    if (request.after_cursor() >
        static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::OutOfRangeError("field after_cursor: not a cursor");
    }
    after = static_cast<int64_t>(request.after_cursor());
  }
  return ReferralWatch::Start(this, request.box(), after);
}

absl::Duration HeartbeatInterval(
    const accord::v1::WatchReferralsRequest& request) {
  if (!request.has_heartbeat_interval()) return kDefaultHeartbeat;
  const auto& d = request.heartbeat_interval();
  return std::clamp(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()),
                    kMinHeartbeat, kMaxHeartbeat);
}

absl::StatusOr<std::unique_ptr<ReferralWatch>> ReferralWatch::Start(
    const Referrals* referrals, accord::v1::ReferralBox box,
    std::optional<int64_t> after_cursor) {
  if (after_cursor.has_value()) {
    auto last = referrals->store_->LastReferralCursor();
    if (!last.ok()) return last.status();
    if (*after_cursor > *last) {
      return absl::OutOfRangeError(absl::StrCat(
          "field after_cursor: ", *after_cursor,
          " is ahead of this agent's referral events (the last is ", *last,
          "; was its store replaced?); watch without a cursor to begin with "
          "the referrals open now"));
    }
    return std::unique_ptr<ReferralWatch>(
        new ReferralWatch(referrals, box, *after_cursor, {}));
  }
  auto open = referrals->store_->OpenReferralsNow(box);
  if (!open.ok()) return open.status();
  return std::unique_ptr<ReferralWatch>(new ReferralWatch(
      referrals, box, open->cursor, std::move(open->referrals)));
}

absl::StatusOr<std::vector<accord::v1::ReferralEvent>> ReferralWatch::Next(
    int limit) {
  std::vector<accord::v1::ReferralEvent> out;
  auto add = [&](const StoredReferral& r, accord::v1::ReferralEventKind kind,
                 int64_t cursor) {
    accord::v1::ReferralEvent& e = out.emplace_back();
    *e.mutable_referral() = referrals_->View(r.referral);
    e.set_box(r.box);
    e.set_kind(kind);
    e.set_cursor(static_cast<uint64_t>(cursor));
  };
  if (next_open_ < open_.size()) {
    for (; next_open_ < open_.size() && static_cast<int>(out.size()) < limit;
         ++next_open_) {
      add(open_[next_open_], accord::v1::REFERRAL_EVENT_KIND_CURRENT, cursor_);
    }
    if (next_open_ == open_.size()) open_.clear();
    return out;
  }
  auto events = referrals_->store_->ReferralEventsAfter(box_, cursor_, limit);
  if (!events.ok()) return events.status();
  for (const auto& e : *events) {
    add(e, accord::v1::REFERRAL_EVENT_KIND_CHANGED, e.seq);
    cursor_ = e.seq;
  }
  return out;
}

accord::v1::ReferralEvent ReferralWatch::Heartbeat() const {
  accord::v1::ReferralEvent e;
  e.set_kind(accord::v1::REFERRAL_EVENT_KIND_HEARTBEAT);
  e.set_box(box_);
  e.set_cursor(static_cast<uint64_t>(cursor_));
  return e;
}

}  // namespace accord::agent
