#include "gateway/service.h"

#include "runtime/status.h"
#include "runtime/stream_guard.h"

namespace accord::gateway {

Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const PartnershipDirectory& partnership,
                         const RevocationList* revocation) {
  return ::accord::CallerFromContext(ctx, partnership.id(), revocation);
}

namespace {

using grpc::experimental::InterceptionHookPoints;

class MalformedRequestInterceptor final
    : public grpc::experimental::Interceptor {
 public:
  MalformedRequestInterceptor(Pipeline* pipeline,
                              const PartnershipDirectory* partnership,
                              const RevocationList* revocation,
                              grpc::experimental::ServerRpcInfo* info)
      : pipeline_(pipeline),
        partnership_(partnership),
        revocation_(revocation),
        info_(info) {}

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
      pipeline_->RefuseUnparsed(
          method,
          CallerFromContext(*info_->server_context(), *partnership_,
                            revocation_),
          absl::InvalidArgumentError(
              UnparseableRequestMessage(info_->method())));
    }
    methods->Proceed();
  }

 private:
  Pipeline* pipeline_;
  const PartnershipDirectory* partnership_;
  const RevocationList* revocation_;
  grpc::experimental::ServerRpcInfo* info_;
};

class MalformedRequestAuditorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MalformedRequestAuditorFactory(Pipeline* pipeline,
                                 const PartnershipDirectory* partnership,
                                 const RevocationList* revocation)
      : pipeline_(pipeline),
        partnership_(partnership),
        revocation_(revocation) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MalformedRequestInterceptor(pipeline_, partnership_, revocation_,
                                           info);
  }

 private:
  Pipeline* pipeline_;
  const PartnershipDirectory* partnership_;
  const RevocationList* revocation_;
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

// One unary method: the logic's `fn(caller, request, done)`.
template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, Caller caller,
                                const Req* request, Resp* response, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  fn(std::move(caller), *request, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* NoReferrals(grpc::CallbackServerContext* ctx) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               "this gateway routes no referrals"));
  return reactor;
}

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestAuditor(Pipeline* pipeline,
                            const PartnershipDirectory* partnership,
                            const RevocationList* revocation) {
  return std::make_unique<MalformedRequestAuditorFactory>(pipeline, partnership,
                                                          revocation);
}

// ---------------------------------------------------------------------------
// Gateway

grpc::ServerUnaryReactor* GatewayService::Query(
    grpc::CallbackServerContext* ctx, const accord::v1::QueryRequest* request,
    accord::v1::QueryResponse* response) {
  return Unary(ctx, CallerOf(*ctx), request, response,
               [this](Caller c, const auto& r, auto done) {
                 gateway_->Query(std::move(c), r, std::move(done));
               });
}

grpc::ServerUnaryReactor* GatewayService::ListAgreements(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ListAgreementsRequest* request,
    accord::v1::ListAgreementsResponse* response) {
  return Unary(ctx, CallerOf(*ctx), request, response,
               [this](Caller c, const auto& r, auto done) {
                 gateway_->ListAgreements(std::move(c), r, std::move(done));
               });
}

grpc::ServerUnaryReactor* GatewayService::Statistics(
    grpc::CallbackServerContext* ctx,
    const accord::v1::StatisticsRequest* request,
    accord::v1::StatisticsResponse* response) {
  if (statistics_ == nullptr) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 "this gateway runs no statistics"));
    return reactor;
  }
  return Unary(ctx, CallerOf(*ctx), request, response,
               [this](Caller c, const auto& r, auto done) {
                 statistics_->Statistics(std::move(c), r, std::move(done));
               });
}

#define ACCORD_REFERRAL_METHOD(Name, Fn)                             \
  grpc::ServerUnaryReactor* GatewayService::Name(                    \
      grpc::CallbackServerContext* ctx,                              \
      const accord::v1::Name##Request* request,                      \
      accord::v1::Name##Response* response) {                        \
    if (referrals_ == nullptr) return NoReferrals(ctx);              \
    return Unary(ctx, CallerOf(*ctx), request, response,             \
                 [this](Caller c, const auto& r, auto done) {        \
                   referrals_->Fn(std::move(c), r, std::move(done)); \
                 });                                                 \
  }

ACCORD_REFERRAL_METHOD(SendReferral, Send)
ACCORD_REFERRAL_METHOD(UpdateReferral, Update)
ACCORD_REFERRAL_METHOD(GetReferral, Get)
ACCORD_REFERRAL_METHOD(GetReferralKey, GetKey)

#undef ACCORD_REFERRAL_METHOD

}  // namespace accord::gateway
