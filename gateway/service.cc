#include "gateway/service.h"

#include "runtime/status.h"
#include "runtime/stream_guard.h"

namespace accord::gateway {

Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const Gateway& gateway) {
  Caller caller;
  auto auth = ctx.auth_context();
  if (auth) {
    caller.principal = PeerPrincipal(*auth, gateway.partnership().id());
    caller.peer_uris = PeerUris(*auth);
    if (caller.principal.ok() && gateway.revocation() != nullptr) {
      if (auto s = gateway.revocation()->CheckPeer(*auth); !s.ok()) {
        caller.principal = s;
      }
    }
  }
  caller.actor = ActorFromMetadata(ctx);
  caller.deadline = absl::FromChrono(ctx.deadline());
  return caller;
}

namespace {

using grpc::experimental::InterceptionHookPoints;

class MalformedRequestInterceptor final
    : public grpc::experimental::Interceptor {
 public:
  MalformedRequestInterceptor(Gateway* gateway,
                              grpc::experimental::ServerRpcInfo* info)
      : gateway_(gateway), info_(info) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        info_->type() == grpc::experimental::ServerRpcInfo::Type::UNARY &&
        ClassifyRequest(info_, methods) == RequestArrival::kUnparseable) {
      // A unary request that gRPC could not deserialise: the handler will
      // never run, so record the refusal here. (A stream the client reset
      // before its request came is not one; the stream guard counts those.)
      std::string method = info_->method();
      if (const size_t slash = method.rfind('/'); slash != std::string::npos)
        method = method.substr(slash + 1);
      gateway_->AuditRefusal(
          CallerFromContext(*info_->server_context(), *gateway_), method,
          absl::InvalidArgumentError(
              UnparseableRequestMessage(info_->method())));
    }
    methods->Proceed();
  }

 private:
  Gateway* gateway_;
  grpc::experimental::ServerRpcInfo* info_;
};

class MalformedRequestAuditorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MalformedRequestAuditorFactory(Gateway* gateway)
      : gateway_(gateway) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MalformedRequestInterceptor(gateway_, info);
  }

 private:
  Gateway* gateway_;
};

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
  gateway_->Query(CallerFromContext(*ctx, *gateway_), *request,
                  FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::ListAgreements(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ListAgreementsRequest* request,
    accord::v1::ListAgreementsResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  gateway_->ListAgreements(CallerFromContext(*ctx, *gateway_), *request,
                           FinishInto(reactor, response));
  return reactor;
}

// Referral methods: the ReferralRouter holds the logic. Each call is admitted
// under the caller organisation's rate and concurrency limits first (a
// refusal is audited); the permit is held until the call finishes.
template <typename Resp, typename Run>
grpc::ServerUnaryReactor* AdmitThen(grpc::CallbackServerContext* ctx,
                                    Gateway* gateway, const char* method,
                                    Resp* response, Run run) {
  auto* reactor = ctx->DefaultReactor();
  Caller caller = CallerFromContext(*ctx, *gateway);
  auto permit = gateway->Admit(caller);
  if (!permit.ok()) {
    gateway->AuditRefusal(caller, method, permit.status());
    reactor->Finish(ToGrpcStatus(permit.status()));
    return reactor;
  }
  auto held = std::make_shared<OrgLimits::Permit>(std::move(*permit));
  run(caller, [held, finish = FinishInto(reactor, response)](
                  absl::StatusOr<Resp> result) { finish(std::move(result)); });
  return reactor;
}

#define ACCORD_REFERRAL_METHOD(Name, Fn)                                  \
  grpc::ServerUnaryReactor* GatewayService::Name(                         \
      grpc::CallbackServerContext* ctx,                                   \
      const accord::v1::Name##Request* request,                           \
      accord::v1::Name##Response* response) {                             \
    if (referrals_ == nullptr) {                                          \
      auto* reactor = ctx->DefaultReactor();                              \
      reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,       \
                                   "this gateway routes no referrals"));  \
      return reactor;                                                     \
    }                                                                     \
    return AdmitThen(ctx, gateway_, #Name, response,                      \
                     [this, request](const Caller& caller, auto done) {   \
                       referrals_->Fn(caller, *request, std::move(done)); \
                     });                                                  \
  }

ACCORD_REFERRAL_METHOD(SendReferral, Send)
ACCORD_REFERRAL_METHOD(UpdateReferral, Update)
ACCORD_REFERRAL_METHOD(GetReferral, Get)
ACCORD_REFERRAL_METHOD(GetReferralKey, GetKey)

#undef ACCORD_REFERRAL_METHOD

}  // namespace accord::gateway

namespace accord::gateway {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestAuditor(Gateway* gateway) {
  return std::make_unique<MalformedRequestAuditorFactory>(gateway);
}

}  // namespace accord::gateway
