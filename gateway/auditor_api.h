// The auditor API's logic, independent of gRPC: search, subject access
// reports, the review queue, signed tree heads, inclusion and consistency
// proofs, and export.
//
// Every call goes through the Pipeline (auditor identities only, admitted
// under the same limits as every caller) and is itself recorded in the log:
// reading the audit log is audited, allowed or refused. A call's access entry
// is durable before anything is read; then the body runs on the API's own
// worker thread, never on gRPC's threads nor on the audit writer's. Subject
// access reports are paged like searches. Exports run on a fixed pool of
// export threads (`max_concurrent_exports`); one more is refused until one
// finishes, so memory and threads stay bounded whatever auditors do.
//
// `done` runs exactly once. Thread-safe.
#ifndef ACCORD_GATEWAY_AUDITOR_API_H_
#define ACCORD_GATEWAY_AUDITOR_API_H_

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "gateway/pipeline.h"
#include "runtime/serial_executor.h"

namespace accord::gateway {

struct AuditorApiOptions {
  int max_concurrent_exports = 2;
};

class AuditorApi {
 public:
  // Where an export's chunks go. Write returns once the chunk is written (it
  // may block: it runs on an export thread), or an error to stop.
  class ExportSink {
   public:
    virtual ~ExportSink() = default;
    virtual absl::Status Write(const accord::v1::ExportChunk& chunk) = 0;
  };

  // Both pointers must outlive the AuditorApi.
  AuditorApi(Pipeline* pipeline, audit::AuditLog* log,
             AuditorApiOptions options = {});
  ~AuditorApi();

  // Requests must stay valid until `done` has run.
  void Search(Caller caller, const accord::v1::AuditSearchRequest& request,
              Done<accord::v1::AuditSearchResponse> done);
  void SubjectAccessReport(Caller caller,
                           const accord::v1::SubjectAccessRequest& request,
                           Done<accord::v1::SubjectAccessResponse> done);
  void ReviewQueue(Caller caller, const accord::v1::ReviewQueueRequest& request,
                   Done<accord::v1::ReviewQueueResponse> done);
  void MarkReviewed(Caller caller,
                    const accord::v1::MarkReviewedRequest& request,
                    Done<accord::v1::MarkReviewedResponse> done);
  void GetTreeHead(Caller caller, const accord::v1::GetTreeHeadRequest& request,
                   Done<accord::v1::SignedTreeHead> done);
  void GetInclusionProof(Caller caller,
                         const accord::v1::InclusionProofRequest& request,
                         Done<accord::v1::InclusionProofResponse> done);
  void GetConsistencyProof(Caller caller,
                           const accord::v1::ConsistencyProofRequest& request,
                           Done<accord::v1::ConsistencyProof> done);
  // Streams the export to `sink` (which must outlive `done`); `done` gets
  // the outcome once the last chunk is written or the export stopped.
  void Export(Caller caller, const accord::v1::ExportRequest& request,
              ExportSink* sink, std::function<void(absl::Status)> done);

 private:
  // Validates with `check`, records the access, then runs `body` on the
  // worker. `detail` describes the access in its entry.
  template <typename Resp, typename Check, typename Body>
  void Read(const Method& method, Caller caller, std::string detail,
            Done<Resp> done, Check check, Body body);
  // An export thread that is free, or nullptr.
  SerialExecutor* ClaimExportThread(int* index);

  Pipeline* pipeline_;
  audit::AuditLog* log_;
  const AuditorApiOptions options_;
  std::unique_ptr<std::atomic<bool>[]> export_busy_;
  std::vector<std::unique_ptr<SerialExecutor>> export_threads_;
  // Declared last: destroyed first, so queued bodies finish while the
  // pipeline and log are still alive.
  SerialExecutor worker_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_AUDITOR_API_H_
