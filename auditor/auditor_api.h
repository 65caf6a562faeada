// The auditor API over one audit log, independent of gRPC: search, subject
// access reports, the review queue, signed tree heads, inclusion and
// consistency proofs, and export (proto/accord/v1/gateway.proto, service
// Auditor).
//
// One rule holds for every call: the reader is authorised, and the access
// (or its refusal) is an entry in the very log being read, durable before
// the call's body runs. Who may read, and how that entry is written, belongs
// to the log's keeper: the gateway for the partnership's log, each agent for
// its own (AuditorAccess).
//
// Bodies run one at a time on a worker thread of their own: never on gRPC's
// event threads nor on the audit log's callback thread, whose callbacks must
// not block. `done` runs exactly once, on that worker or, for a refusal, on
// the thread that reported the refusal durable. Thread-safe.
#ifndef ACCORD_AUDITOR_AUDITOR_API_H_
#define ACCORD_AUDITOR_AUDITOR_API_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "runtime/identity.h"
#include "runtime/serial_executor.h"

namespace accord::auditor {

// Who is calling, as the transport established it.
struct Caller {
  // The certificate identity, or why there is none usable (revoked, none).
  absl::StatusOr<Principal> principal =
      absl::UnauthenticatedError("no identity");
  std::string peer_uris;  // the raw URI SANs, for the entry of a refusal
  accord::v1::Actor actor;
};

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
  // How an authorised caller is named in the MarkReviewed entry it makes.
  virtual audit::Reviewer ReviewerOf(const Caller& caller) const = 0;
};

template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

class AuditorApi {
 public:
  // `log` and `access` outlive the API.
  AuditorApi(audit::AuditLog* log, AuditorAccess* access)
      : log_(log), access_(access) {}

  void Search(const Caller& caller, const accord::v1::AuditSearchRequest& req,
              Done<accord::v1::AuditSearchResponse> done);
  // Every entry mentioning the tokens, all pages, and the readable report.
  void SubjectAccessReport(const Caller& caller,
                           const accord::v1::SubjectAccessRequest& req,
                           Done<accord::v1::SubjectAccessResponse> done);
  void ReviewQueue(const Caller& caller,
                   const accord::v1::ReviewQueueRequest& req,
                   Done<accord::v1::ReviewQueueResponse> done);
  // The review is itself an entry, appended by the log once the access to
  // mark it is recorded.
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

  // An export in two steps, since it streams for long: AuthoriseExport
  // records the access, then Export writes the export to `sink` on the
  // calling thread (a thread of the caller's own; it may block on the sink).
  void AuthoriseExport(const Caller& caller,
                       const accord::v1::ExportRequest& req,
                       std::function<void(absl::Status)> done);
  absl::Status Export(const accord::v1::ExportRequest& req,
                      const audit::AuditLog::ExportSink& sink);

 private:
  // Authorises and records the access, then runs `body` on the worker.
  template <typename Resp, typename Body>
  void Run(const Caller& caller, const char* method, std::string detail,
           Done<Resp> done, Body body);

  audit::AuditLog* const log_;
  AuditorAccess* const access_;
  // Declared last: destroyed first, so queued bodies finish while the log is
  // still alive.
  SerialExecutor worker_;
};

}  // namespace accord::auditor

#endif  // ACCORD_AUDITOR_AUDITOR_API_H_
