#include "agent/service.h"

#include <cstdio>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/identity.h"
#include "runtime/status.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {
// The caller's identity, refused when its certificate is revoked.
absl::StatusOr<Principal> Peer(grpc::CallbackServerContext* ctx,
                               const std::string& partnership,
                               const RevocationList* revocation) {
  auto auth = ctx->auth_context();
  if (!auth) return absl::UnauthenticatedError("no TLS peer");
  auto principal = PeerPrincipal(*auth, partnership);
  if (principal.ok() && revocation != nullptr) {
    if (auto s = revocation->CheckPeer(*auth); !s.ok()) {
      // No record content: the identity and the reason only.
      std::fprintf(stderr, "accord-agent: refused %s: %s\n",
                   principal->uri.c_str(), std::string(s.message()).c_str());
      return s;
    }
  }
  return principal;
}

template <typename T>
ReferralDone<T> FinishInto(grpc::ServerUnaryReactor* reactor, T* response) {
  return [reactor, response](absl::StatusOr<T> result) {
    if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
    *response = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  };
}

// A unary call answered with `answer()` once `authorised` is OK, refused
// with its status otherwise.
template <typename Resp, typename Answer>
grpc::ServerUnaryReactor* AnswerIf(grpc::CallbackServerContext* ctx,
                                   const absl::Status& authorised,
                                   Resp* response, Answer answer) {
  auto* reactor = ctx->DefaultReactor();
  if (!authorised.ok()) {
    reactor->Finish(ToGrpcStatus(authorised));
    return reactor;
  }
  FinishInto(reactor, response)(answer());
  return reactor;
}
}  // namespace

absl::Status HolderService::AuthoriseGateway(
    grpc::CallbackServerContext* ctx) const {
  auto peer = Peer(ctx, partnership_id_, revocation_);
  if (!peer.ok()) return peer.status();
  if (peer->kind != PrincipalKind::kGateway) {
    return absl::PermissionDeniedError(absl::StrCat(
        peer->uri, " may not call the holder API; only the gateway may"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* HolderService::Disclose(
    grpc::CallbackServerContext* ctx,
    const accord::v1::DiscloseRequest* request,
    accord::v1::DiscloseResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  if (auto s = AuthoriseGateway(ctx); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  if (auto s = ValidateMessage(*request); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  *response = discloser_->Disclose(*request);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

absl::Status LocalService::Authorise(grpc::CallbackServerContext& ctx) const {
  if (auto s = api_->Authorise(Peer(&ctx, partnership_id_, revocation_));
      !s.ok())
    return s;
  const accord::v1::Actor actor = ActorFromMetadata(ctx);
  if (actor.user_id().empty() || actor.role().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the acting practitioner is missing: every call from an "
        "organisation's system names the person acting, in metadata '",
        kUserMetadataKey, "' (their user id) and '", kRoleMetadataKey,
        "' (their role)"));
  }
  return absl::OkStatus();
}

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* LocalService::Handle(grpc::CallbackServerContext* ctx,
                                               const Req* request,
                                               Resp* response, Fn fn) {
  return AnswerIf(ctx, Authorise(*ctx),
                  response, [&] { return fn(*request); });
}

#define ACCORD_LOCAL_METHOD(Name)                                              \
  grpc::ServerUnaryReactor* LocalService::Name(                                \
      grpc::CallbackServerContext* ctx,                                        \
      const accord::v1::Name##Request* request,                                \
      accord::v1::Name##Response* response) {                                  \
    return Handle(                                                             \
        ctx, request, response,                                                \
        [this](const accord::v1::Name##Request& r) { return api_->Name(r); }); \
  }

ACCORD_LOCAL_METHOD(UpsertSubject)
ACCORD_LOCAL_METHOD(UpsertRecord)
ACCORD_LOCAL_METHOD(RecordConsent)
ACCORD_LOCAL_METHOD(WithdrawConsent)
ACCORD_LOCAL_METHOD(ListConsents)
ACCORD_LOCAL_METHOD(RecordEngagement)
ACCORD_LOCAL_METHOD(SubjectTokens)

#undef ACCORD_LOCAL_METHOD

namespace {

// One import stream. The session does the work; this only moves chunks in
// and the report (or the first whole-file error) out.
class ImportReactor final
    : public grpc::ServerReadReactor<accord::v1::ImportRow> {
 public:
  ImportReactor(LocalApi* api, absl::Status authorised,
                accord::v1::ImportReport* report)
      : api_(api), report_(report) {
    if (!authorised.ok()) {
      Finish(ToGrpcStatus(authorised));
      return;
    }
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client has sent the whole file
      if (session_ == nullptr) {
        Finish(ToGrpcStatus(absl::InvalidArgumentError(
            "field format: the import stream was empty")));
        return;
      }
      auto report = session_->Finish();
      if (!report.ok()) {
        Finish(ToGrpcStatus(report.status()));
        return;
      }
      *report_ = std::move(*report);
      Finish(grpc::Status::OK);
      return;
    }
    if (session_ == nullptr) {
      auto session = api_->StartImport(chunk_.format());
      if (!session.ok()) {
        Finish(ToGrpcStatus(session.status()));
        return;
      }
      session_ = std::move(*session);
    } else if (chunk_.format() != accord::v1::IMPORT_FORMAT_UNSPECIFIED &&
               chunk_.format() != format_) {
      Finish(ToGrpcStatus(absl::InvalidArgumentError(
          "field format: changed in the middle of an import")));
      return;
    }
    if (format_ == accord::v1::IMPORT_FORMAT_UNSPECIFIED)
      format_ = chunk_.format();
    if (auto s = session_->Feed(chunk_.chunk()); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  LocalApi* const api_;
  accord::v1::ImportReport* const report_;
  accord::v1::ImportRow chunk_;
  accord::v1::ImportFormat format_ = accord::v1::IMPORT_FORMAT_UNSPECIFIED;
  std::unique_ptr<ImportSession> session_;
};

}  // namespace

grpc::ServerReadReactor<accord::v1::ImportRow>* LocalService::Import(
    grpc::CallbackServerContext* ctx, accord::v1::ImportReport* response) {
  return new ImportReactor(
      api_, Authorise(*ctx), response);
}

// ---------------------------------------------------------------------------
// Referrals

namespace {
grpc::ServerUnaryReactor* Unimplemented(grpc::CallbackServerContext* ctx) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               "this agent handles no referrals"));
  return reactor;
}
}  // namespace

grpc::ServerUnaryReactor* HolderService::DeliverReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::DeliverReferralRequest* request,
    accord::v1::DeliverReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  return AnswerIf(ctx, AuthoriseGateway(ctx), response,
                  [&] { return referrals_->Deliver(*request); });
}

grpc::ServerUnaryReactor* HolderService::NotifyReferralStatus(
    grpc::CallbackServerContext* ctx,
    const accord::v1::NotifyReferralStatusRequest* request,
    accord::v1::NotifyReferralStatusResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  return AnswerIf(ctx, AuthoriseGateway(ctx), response,
                  [&] { return referrals_->Notify(*request); });
}

grpc::ServerUnaryReactor* LocalService::SendReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::LocalSendReferralRequest* request,
    accord::v1::SendReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  auto* reactor = ctx->DefaultReactor();
  if (auto s = Authorise(*ctx);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  referrals_->Send(*request, ActorFromMetadata(*ctx),
                   FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* LocalService::ListReferrals(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ListReferralsRequest* request,
    accord::v1::ListReferralsResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  return Handle(ctx, request, response,
                [this](const accord::v1::ListReferralsRequest& r) {
                  return referrals_->List(r);
                });
}

grpc::ServerUnaryReactor* LocalService::UpdateReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::UpdateReferralRequest* request,
    accord::v1::UpdateReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  auto* reactor = ctx->DefaultReactor();
  if (auto s = Authorise(*ctx);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  referrals_->Update(*request, ActorFromMetadata(*ctx),
                     FinishInto(reactor, response));
  return reactor;
}

namespace {
// One watcher: events queue here and are written one at a time. A watcher
// that falls too far behind is ended rather than buffered without bound.
class WatchReactor final
    : public grpc::ServerWriteReactor<accord::v1::ReferralEvent> {
 public:
  WatchReactor(ReferralEvents* events, accord::v1::ReferralBox box)
      : events_(events), box_(box) {
    subscription_ = events_->Subscribe(
        [this](const accord::v1::ReferralEvent& e) { OnEvent(e); });
  }
  // Ends at once (refused before any event).
  explicit WatchReactor(const absl::Status& refusal) {
    Finish(ToGrpcStatus(refusal));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    queue_.pop_front();
    if (!queue_.empty() && !finished_) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    if (events_ != nullptr) events_->Unsubscribe(subscription_);
    delete this;
  }

 private:
  static constexpr size_t kMaxQueued = 1000;

  void OnEvent(const accord::v1::ReferralEvent& e) {
    if (box_ != accord::v1::REFERRAL_BOX_UNSPECIFIED && e.box() != box_) return;
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (queue_.size() >= kMaxQueued) {
      return FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "watcher fell too far behind"));
    }
    queue_.push_back(e);
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  ReferralEvents* events_ = nullptr;
  accord::v1::ReferralBox box_ = accord::v1::REFERRAL_BOX_UNSPECIFIED;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::deque<accord::v1::ReferralEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};
}  // namespace

grpc::ServerWriteReactor<accord::v1::ReferralEvent>*
LocalService::WatchReferrals(grpc::CallbackServerContext* ctx,
                             const accord::v1::WatchReferralsRequest* request) {
  if (referrals_ == nullptr) {
    return new WatchReactor(
        absl::UnimplementedError("this agent handles no referrals"));
  }
  if (auto s = Authorise(*ctx);
      !s.ok()) {
    return new WatchReactor(s);
  }
  if (auto s = ValidateMessage(*request); !s.ok()) return new WatchReactor(s);
  return new WatchReactor(&referrals_->events(), request->box());
}

}  // namespace accord::agent
