// The gateway's gRPC service: a thin callback-API adapter. Each handler
// builds the Caller from the TLS peer (CallerFromContext), hands the request
// to the logic (Gateway, ReferralRouter), and finishes the reactor when the
// logic calls back. The Auditor service is auditor::AuditorService over
// the gateway's access policy (gateway/auditor_access.h). No per-request
// threads, no blocking in handlers, no logic here.
#ifndef ACCORD_GATEWAY_SERVICE_H_
#define ACCORD_GATEWAY_SERVICE_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "accord/v1/gateway.grpc.pb.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "gateway/referral_router.h"
#include "gateway/statistics.h"
#include "runtime/revocation.h"

namespace accord::gateway {

// The transport's view of the caller (runtime/caller.h) in `partnership`.
Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const PartnershipDirectory& partnership,
                         const RevocationList* revocation);

class GatewayService final : public accord::v1::Gateway::CallbackService {
 public:
  // `referrals` may be null: the referral methods then answer UNIMPLEMENTED.
  // `statistics` may be null: Statistics then answers UNIMPLEMENTED.
  GatewayService(Gateway* gateway, ReferralRouter* referrals,
                 const PartnershipDirectory* partnership,
                 const RevocationList* revocation,
                 StatisticsRuns* statistics = nullptr)
      : gateway_(gateway),
        referrals_(referrals),
        statistics_(statistics),
        partnership_(partnership),
        revocation_(revocation) {}

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx,
                                  const accord::v1::QueryRequest* request,
                                  accord::v1::QueryResponse* response) override;
  grpc::ServerUnaryReactor* ListAgreements(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ListAgreementsRequest* request,
      accord::v1::ListAgreementsResponse* response) override;
  grpc::ServerUnaryReactor* SendReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::SendReferralRequest* request,
      accord::v1::SendReferralResponse* response) override;
  grpc::ServerUnaryReactor* UpdateReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::UpdateReferralRequest* request,
      accord::v1::UpdateReferralResponse* response) override;
  grpc::ServerUnaryReactor* GetReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::GetReferralRequest* request,
      accord::v1::GetReferralResponse* response) override;
  grpc::ServerUnaryReactor* GetReferralKey(
      grpc::CallbackServerContext* ctx,
      const accord::v1::GetReferralKeyRequest* request,
      accord::v1::GetReferralKeyResponse* response) override;
  grpc::ServerUnaryReactor* Statistics(
      grpc::CallbackServerContext* ctx,
      const accord::v1::StatisticsRequest* request,
      accord::v1::StatisticsResponse* response) override;

 private:
  Caller CallerOf(const grpc::CallbackServerContext& ctx) const {
    return CallerFromContext(ctx, *partnership_, revocation_);
  }

  Gateway* gateway_;
  ReferralRouter* referrals_;
  StatisticsRuns* statistics_;
  const PartnershipDirectory* partnership_;
  const RevocationList* revocation_;
};

// Audits calls whose request gRPC could not parse (malformed protobuf), which
// never reach a handler: the refusal goes through the pipeline's refusal log
// under the caller's certificate identity and the method. Register with
// StartServer's `interceptors`.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestAuditor(Pipeline* pipeline,
                            const PartnershipDirectory* partnership,
                            const RevocationList* revocation);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_SERVICE_H_
