#include "gateway/service.h"

#include "runtime/status.h"

namespace accord::gateway {

Caller CallerFromContext(const grpc::CallbackServerContext& ctx,
                         const std::string& partnership) {
  Caller caller;
  auto auth = ctx.auth_context();
  if (auth) {
    caller.principal = PeerPrincipal(*auth, partnership);
    caller.peer_uris = PeerUris(*auth);
  }
  caller.actor = ActorFromMetadata(ctx);
  return caller;
}

namespace {
// Finishes `reactor` with the logic's result, moving the value into the
// response message gRPC owns.
template <typename T>
Done<T> FinishInto(grpc::ServerUnaryReactor* reactor, T* response) {
  return [reactor, response](absl::StatusOr<T> result) {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    *response = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  };
}
}  // namespace

grpc::ServerUnaryReactor* GatewayService::Query(
    grpc::CallbackServerContext* ctx, const accord::v1::QueryRequest* request,
    accord::v1::QueryResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  gateway_->Query(CallerFromContext(*ctx, gateway_->partnership().id()),
                  *request, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::ListAgreements(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ListAgreementsRequest* request,
    accord::v1::ListAgreementsResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  gateway_->ListAgreements(
      CallerFromContext(*ctx, gateway_->partnership().id()), *request,
      FinishInto(reactor, response));
  return reactor;
}

// Referral methods: the ReferralRouter holds the logic.
#define ACCORD_REFERRAL_METHOD(Name, Fn)                                  \
  grpc::ServerUnaryReactor* GatewayService::Name(                         \
      grpc::CallbackServerContext* ctx,                                   \
      const accord::v1::Name##Request* request,                           \
      accord::v1::Name##Response* response) {                             \
    auto* reactor = ctx->DefaultReactor();                                \
    if (referrals_ == nullptr) {                                          \
      reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,       \
                                   "this gateway routes no referrals"));  \
      return reactor;                                                     \
    }                                                                     \
    referrals_->Fn(CallerFromContext(*ctx, gateway_->partnership().id()), \
                   *request, FinishInto(reactor, response));              \
    return reactor;                                                       \
  }

ACCORD_REFERRAL_METHOD(SendReferral, Send)
ACCORD_REFERRAL_METHOD(UpdateReferral, Update)
ACCORD_REFERRAL_METHOD(GetReferral, Get)
ACCORD_REFERRAL_METHOD(GetReferralKey, GetKey)

#undef ACCORD_REFERRAL_METHOD

}  // namespace accord::gateway
