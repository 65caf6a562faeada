// The gateway's gRPC services: thin callback-API adapters over Gateway.
// Each handler builds the Caller from the TLS peer, hands the request to the
// logic, and finishes the reactor when the logic calls back. No per-request
// threads, no blocking in handlers.
#ifndef ACCORD_GATEWAY_SERVICE_H_
#define ACCORD_GATEWAY_SERVICE_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "accord/v1/gateway.grpc.pb.h"
#include "gateway/gateway.h"
#include "gateway/referral_router.h"

namespace accord::gateway {

class GatewayService final : public accord::v1::Gateway::CallbackService {
 public:
  // `referrals` may be null: the referral methods then answer UNIMPLEMENTED.
  explicit GatewayService(Gateway* gateway, ReferralRouter* referrals = nullptr)
      : gateway_(gateway), referrals_(referrals) {}

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

 private:
  Gateway* gateway_;
  ReferralRouter* referrals_;
};

// The transport's view of the caller: its certificate identity (refused
// when the certificate is revoked), the acting practitioner and the call's
// deadline.
Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const Gateway& gateway);

// Audits calls whose request gRPC could not parse (malformed protobuf), which
// never reach a handler: the entry names the caller's certificate identity
// and the method. Register with StartServer's `interceptors`.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeMalformedRequestAuditor(Gateway* gateway);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_SERVICE_H_
