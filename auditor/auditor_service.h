// The Auditor gRPC service over an AuditorApi: it only translates. Unary
// calls pass the caller (certificate identity, checked against the CRL, and
// the acting practitioner) to the API and finish with its answer; Export
// streams chunk by chunk, each written from the API's export thread. Served
// by the gateway over the partnership's log and by each agent on its local
// API port over its own. Thread-safe.
#ifndef ACCORD_AUDITOR_AUDITOR_SERVICE_H_
#define ACCORD_AUDITOR_AUDITOR_SERVICE_H_

#include <string>

#include "accord/v1/gateway.grpc.pb.h"
#include "auditor/auditor_api.h"
#include "runtime/revocation.h"

namespace accord::auditor {

class AuditorService final : public accord::v1::Auditor::CallbackService {
 public:
  // `revocation`: the CRL checked on every call (null: none configured).
  AuditorService(AuditorApi* api, std::string partnership_id,
                 const RevocationList* revocation)
      : api_(api),
        partnership_id_(std::move(partnership_id)),
        revocation_(revocation) {}

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
  Caller CallerOf(const grpc::CallbackServerContext* ctx) const {
    return CallerFromContext(*ctx, partnership_id_, revocation_);
  }

  AuditorApi* const api_;
  const std::string partnership_id_;
  const RevocationList* const revocation_;
};

}  // namespace accord::auditor

#endif  // ACCORD_AUDITOR_AUDITOR_SERVICE_H_
