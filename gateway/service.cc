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

}  // namespace accord::gateway
