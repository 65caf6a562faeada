// The gateway's gRPC services: thin callback-API adapters. Each handler
// builds the Caller from the TLS peer (CallerFromContext), hands the request
// to the logic (Gateway, ReferralRouter, AuditorApi), and finishes the
// reactor when the logic calls back. No per-request threads, no blocking in
// handlers, no logic here.
#ifndef ACCORD_GATEWAY_SERVICE_H_
#define ACCORD_GATEWAY_SERVICE_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "accord/v1/gateway.grpc.pb.h"
#include "gateway/auditor_api.h"
#include "gateway/gateway.h"
#include "gateway/pipeline.h"
#include "gateway/referral_router.h"
#include "runtime/revocation.h"

namespace accord::gateway {

// The transport's view of the caller: its certificate identity (refused when
// the certificate is revoked: `revocation` may be null when no CRL is
// configured), the acting practitioner and the call's deadline.
Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const PartnershipDirectory& partnership,
                         const RevocationList* revocation);

class GatewayService final : public accord::v1::Gateway::CallbackService {
 public:
  // `referrals` may be null: the referral methods then answer UNIMPLEMENTED.
  GatewayService(Gateway* gateway, ReferralRouter* referrals,
                 const PartnershipDirectory* partnership,
                 const RevocationList* revocation)
      : gateway_(gateway),
        referrals_(referrals),
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

 private:
  Caller CallerOf(const grpc::CallbackServerContext& ctx) const {
    return CallerFromContext(ctx, *partnership_, revocation_);
  }

  Gateway* gateway_;
  ReferralRouter* referrals_;
  const PartnershipDirectory* partnership_;
  const RevocationList* revocation_;
};

class AuditorService final : public accord::v1::Auditor::CallbackService {
 public:
  AuditorService(AuditorApi* api, const PartnershipDirectory* partnership,
                 const RevocationList* revocation)
      : api_(api), partnership_(partnership), revocation_(revocation) {}

  grpc::ServerUnaryReactor* Search(
      grpc::CallbackServerContext* ctx,
      const accord::v1::AuditSearchRequest* request,
      accord::v1::AuditSearchResponse* response) override;
  grpc::ServerUnaryReactor* SubjectAccessReport(
      grpc::CallbackServerContext* ctx,
      const accord::v1::SubjectAccessRequest* request,
      accord::v1::SubjectAccessResponse* response) override;
  grpc::ServerUnaryReactor* ReviewQueue(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ReviewQueueRequest* request,
      accord::v1::ReviewQueueResponse* response) override;
  grpc::ServerUnaryReactor* MarkReviewed(
      grpc::CallbackServerContext* ctx,
      const accord::v1::MarkReviewedRequest* request,
      accord::v1::MarkReviewedResponse* response) override;
  grpc::ServerUnaryReactor* GetTreeHead(
      grpc::CallbackServerContext* ctx,
      const accord::v1::GetTreeHeadRequest* request,
      accord::v1::SignedTreeHead* response) override;
  grpc::ServerUnaryReactor* GetInclusionProof(
      grpc::CallbackServerContext* ctx,
      const accord::v1::InclusionProofRequest* request,
      accord::v1::InclusionProofResponse* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ConsistencyProofRequest* request,
      accord::v1::ConsistencyProof* response) override;
  grpc::ServerWriteReactor<accord::v1::ExportChunk>* Export(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ExportRequest* request) override;

 private:
  Caller CallerOf(const grpc::CallbackServerContext& ctx) const {
    return CallerFromContext(ctx, *partnership_, revocation_);
  }

  AuditorApi* api_;
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
