// The auditor API over one audit log, independent of gRPC: search, subject
// access reports, the review queue, signed tree heads, inclusion and
// consistency proofs, and export (proto/accord/v1/gateway.proto, service
// Auditor). The gateway serves it over the partnership's log, each agent over
// its own.
//
// One rule holds for every call: the reader is authorised, and the access
// (or its refusal) is an entry in the very log being read, durable before
// anything is read. Who may read, and how that entry is written, belongs to
// the log's keeper (AuditorAccess): the gateway's request pipeline for the
// partnership's log, each agent for its own. A request that is not valid
// (e.g. an export format that does not exist) is refused and that refusal
// recorded, before anything else.
//
// Bodies run one at a time on a worker thread of their own: never on gRPC's
// event threads nor on the audit log's callback thread, whose callbacks must
// not block. Subject access reports are paged like searches. Exports run on
// a fixed pool of export threads (`max_concurrent_exports`); one more is
// refused with RESOURCE_EXHAUSTED until one finishes, so threads and memory
// stay bounded whatever readers do. `done` runs exactly once. Requests must
// stay valid until their `done` has run. Thread-safe.
#ifndef ACCORD_AUDITOR_AUDITOR_API_H_
#define ACCORD_AUDITOR_AUDITOR_API_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "runtime/caller.h"
#include "runtime/serial_executor.h"

namespace accord::auditor {

using ::accord::Caller;

// Who may read a log, and how each read is recorded in it.
class AuditorAccess {
 public:
  virtual ~AuditorAccess() = default;
  // Authorises `caller` for `method` (e.g. "AuditSearch") and appends the
  // entry recording the access, with `detail`, or its refusal. `done` runs
  // once that entry is durable: OK, the refusal, or Unavailable when the
  // entry could not be written (then nothing is read).
  virtual void AuthoriseRead(const Caller& caller, const std::string& method,
                             const std::string& detail,
                             std::function<void(absl::Status)> done) = 0;
  // Records the refusal `status` of a read whose request is not valid, then
  // `done(status)` (or Unavailable when it could not be recorded).
  virtual void RefuseRead(const Caller& caller, const std::string& method,
                          const std::string& detail, absl::Status status,
                          std::function<void(absl::Status)> done) = 0;
  // How an authorised caller is named in the MarkReviewed entry it makes.
  virtual audit::Reviewer ReviewerOf(const Caller& caller) const = 0;
};

template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

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

  // `log` and `access` outlive the API.
  AuditorApi(audit::AuditLog* log, AuditorAccess* access,
             AuditorApiOptions options = {});
  ~AuditorApi();

  void Search(const Caller& caller, const accord::v1::AuditSearchRequest& req,
              Done<accord::v1::AuditSearchResponse> done);
  // One page of the entries mentioning the tokens, and its readable report.
  void SubjectAccessReport(const Caller& caller,
                           const accord::v1::SubjectAccessRequest& req,
                           Done<accord::v1::SubjectAccessResponse> done);
  void ReviewQueue(const Caller& caller,
                   const accord::v1::ReviewQueueRequest& req,
                   Done<accord::v1::ReviewQueueResponse> done);
  // The review is itself an entry, appended by the log (with the reviewer and
  // the note) once the access to mark it is recorded; an unknown entry, or
  // one not awaiting review, is a recorded refusal.
  void MarkReviewed(const Caller& caller,
                    const accord::v1::MarkReviewedRequest& req,
                    Done<accord::v1::MarkReviewedResponse> done);
  // A head signed now over everything durable.
  void GetTreeHead(const Caller& caller, Done<accord::v1::SignedTreeHead> done);
  // The proof, the entry and the head it is checked against.
  void GetInclusionProof(const Caller& caller,
                         const accord::v1::InclusionProofRequest& req,
                         Done<accord::v1::InclusionProofResponse> done);
  void GetConsistencyProof(const Caller& caller,
                           const accord::v1::ConsistencyProofRequest& req,
                           Done<accord::v1::ConsistencyProof> done);
  // Streams the export to `sink` (which must outlive `done`) from an export
  // thread; `done` gets the outcome once the last chunk is written or the
  // export stopped.
  void Export(const Caller& caller, const accord::v1::ExportRequest& req,
              ExportSink* sink, std::function<void(absl::Status)> done);

 private:
  // Refuses with `check()`'s error, or records the access and runs `body`
  // on the worker.
  template <typename Resp, typename Check, typename Body>
  void Run(const Caller& caller, const char* method, std::string detail,
           Done<Resp> done, Check check, Body body);
  // An export thread that is free (its index in *index), or nullptr.
  SerialExecutor* ClaimExportThread(int* index);

  audit::AuditLog* const log_;
  AuditorAccess* const access_;
  const AuditorApiOptions options_;
  std::unique_ptr<std::atomic<bool>[]> export_busy_;
  std::vector<std::unique_ptr<SerialExecutor>> export_threads_;
  // Declared last: destroyed first, so queued bodies finish while the log is
  // still alive.
  SerialExecutor worker_;
};

}  // namespace accord::auditor

#endif  // ACCORD_AUDITOR_AUDITOR_API_H_
