#include "agent/service.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
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

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* LocalService::Handle(grpc::CallbackServerContext* ctx,
                                               const Req* request,
                                               Resp* response, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  if (auto s = api_->Authorise(Peer(ctx, partnership_id_, revocation_));
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<Resp> result = fn(*request);
  if (!result.ok()) {
    reactor->Finish(ToGrpcStatus(result.status()));
    return reactor;
  }
  *response = std::move(*result);
  reactor->Finish(grpc::Status::OK);
  return reactor;
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

}  // namespace accord::agent
