// The auditor API: search, subject access reports, the review queue, signed
// tree heads, inclusion and consistency proofs, and export. Auditor
// identities only; every call is itself recorded in the log. Callback API:
// unary calls are authorised (and that access made durable in the log), then
// their bodies run on one worker thread, never on gRPC's event threads nor on
// the audit log's writer thread, whose callbacks must not block; Export
// streams chunk by chunk from a reactor.
#ifndef ACCORD_GATEWAY_AUDITOR_SERVICE_H_
#define ACCORD_GATEWAY_AUDITOR_SERVICE_H_

#include "accord/v1/gateway.grpc.pb.h"
#include "audit/audit_log.h"
#include "gateway/gateway.h"
#include "runtime/serial_executor.h"

namespace accord::gateway {

class AuditorService final : public accord::v1::Auditor::CallbackService {
 public:
  AuditorService(Gateway* gateway, audit::AuditLog* log)
      : gateway_(gateway), log_(log) {}

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
  // Authorises and audits the call, then runs `body` and finishes.
  template <typename Resp, typename Body>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                  const char* method, std::string detail,
                                  Resp* response, Body body);

  Gateway* gateway_;
  audit::AuditLog* log_;
  // Declared last: destroyed first, so queued bodies finish while the
  // gateway and log are still alive.
  SerialExecutor worker_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_AUDITOR_SERVICE_H_
