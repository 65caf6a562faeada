// The tamper-evident audit log: every decision the gateway takes, allowed or
// denied, is an AuditEntry appended as a leaf of an RFC 6962 Merkle tree, and
// the log regularly signs its size and root (a SignedTreeHead, Ed25519). An
// auditor holding only the gateway's public key checks inclusion and
// consistency proofs and whole exports offline (audit/verify.h).
//
// AuditLog is the interface the gateway's request handlers and its Auditor
// service use; sqlite_audit_log.h implements it. Implementations are
// thread-safe: every method may be called from any thread concurrently.
#ifndef ACCORD_AUDIT_AUDIT_LOG_H_
#define ACCORD_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/audit.pb.h"
#include "accord/v1/common.pb.h"

namespace accord::audit {

// Filters for Search; empty / unspecified members match everything.
struct AuditQuery {
  std::string caller_org;
  std::string user_id;
  accord::v1::SubjectToken
      subject;  // value empty: any; kind unspecified: any kind
  std::string purpose;
  std::string agreement_id;
  accord::v1::AuditDecision decision = accord::v1::AUDIT_DECISION_UNSPECIFIED;
  absl::Time from = absl::InfinitePast();     // inclusive
  absl::Time until = absl::InfiniteFuture();  // exclusive
};

inline constexpr uint32_t kDefaultPageSize = 100;
inline constexpr uint32_t kMaxPageSize = 1000;

struct PageRequest {
  uint32_t page_size = 0;  // 0: kDefaultPageSize; capped at kMaxPageSize
  std::string page_token;  // from a previous page's next_page_token
};

// Entries in sequence order. next_page_token is empty on the last page.
struct EntryPage {
  std::vector<accord::v1::AuditEntry> entries;
  std::string next_page_token;
};

// Who marks an entry reviewed: recorded in the MarkReviewed entry.
struct Reviewer {
  std::string caller;      // certificate identity, e.g. spiffe://p/auditor/jo
  std::string caller_org;  // may be empty for auditors
  accord::v1::Actor actor;
  std::string request_id;
  // Set when the log is an agent's: its organisation (AuditEntry.agent_org).
  std::string agent_org;
};

enum class ExportFormat { kJsonLines, kCsv };

struct ExportProgress {
  uint64_t entries_so_far = 0;
  uint64_t entries_total = 0;
};

class AuditLog {
 public:
  using DurableCallback = std::function<void(absl::StatusOr<uint64_t> seq)>;

  virtual ~AuditLog() = default;

  // Assigns seq and time (from the injected Clock), appends, and calls
  // on_durable exactly once, from a background thread, after the entry's
  // transaction has committed (or with the error). Never blocks the caller on
  // I/O: callers are gRPC callback reactors. on_durable must not block; it
  // may call Append again.
  virtual void Append(accord::v1::AuditEntry entry,
                      DurableCallback on_durable) = 0;
  // Synchronous convenience for tools and tests. Never call it from an
  // on_durable callback.
  absl::StatusOr<uint64_t> AppendAndWait(accord::v1::AuditEntry entry);

  // The newest signed tree head (a head is signed at least every second while
  // entries arrive; one is signed on demand when the log has none yet).
  virtual absl::StatusOr<accord::v1::SignedTreeHead> LatestTreeHead() = 0;
  // Signs a head covering every entry durable now (waits for the writer).
  virtual absl::StatusOr<accord::v1::SignedTreeHead> SignTreeHeadNow() = 0;
  // A signed head for exactly `tree_size` (<= the durable size): a stored one
  // when the log signed that size, otherwise signed now over the stored root.
  virtual absl::StatusOr<accord::v1::SignedTreeHead> TreeHeadAt(
      uint64_t tree_size) = 0;

  virtual absl::StatusOr<accord::v1::AuditEntry> GetEntry(uint64_t seq) = 0;
  // The exact leaf bytes of an entry (audit/entry.h).
  virtual absl::StatusOr<std::string> GetLeaf(uint64_t seq) = 0;

  virtual absl::StatusOr<EntryPage> Search(const AuditQuery& query,
                                           const PageRequest& page) = 0;
  // Every entry mentioning any of `subjects` (kind unspecified matches any
  // kind with that value).
  virtual absl::StatusOr<EntryPage> SubjectAccess(
      const std::vector<accord::v1::SubjectToken>& subjects,
      const PageRequest& page) = 0;
  // Entries flagged for review and not yet reviewed.
  virtual absl::StatusOr<EntryPage> ReviewQueue(const PageRequest& page) = 0;
  // Appends a "MarkReviewed" entry (reviews_seq, review_note) and marks the
  // original reviewed, atomically. NotFound for an unknown seq,
  // FailedPrecondition for an entry not flagged for review or already
  // reviewed (naming the reviewing entry). The callback receives the new
  // entry's seq, as for Append.
  virtual void MarkReviewed(uint64_t seq, const Reviewer& reviewer,
                            std::string note, DurableCallback on_durable) = 0;
  absl::StatusOr<uint64_t> MarkReviewedAndWait(uint64_t seq,
                                               const Reviewer& reviewer,
                                               std::string note);

  // Proofs against the stored subtree hashes; sizes must not exceed the
  // durable size. tree_size 0 means the latest signed tree head's size.
  virtual absl::StatusOr<accord::v1::InclusionProof> InclusionProof(
      uint64_t leaf_index, uint64_t tree_size) = 0;
  virtual absl::StatusOr<accord::v1::ConsistencyProof> ConsistencyProof(
      uint64_t first_size, uint64_t second_size) = 0;

  // Streams entries [from_seq, to_seq) in `format` to `sink` in chunks of
  // roughly 64 KiB, without holding the log in memory. to_seq 0 means the
  // latest signed tree head's size. A JSON Lines export starts with a header
  // line and ends with the signed tree head for to_seq (audit/verify.h reads
  // it). `sink` may stop the export by returning an error, which Export
  // returns.
  using ExportSink = std::function<absl::Status(
      absl::string_view chunk, const ExportProgress& progress)>;
  virtual absl::Status Export(uint64_t from_seq, uint64_t to_seq,
                              ExportFormat format, const ExportSink& sink) = 0;

  // The number of durable entries (the next seq).
  virtual uint64_t Size() = 0;
};

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_AUDIT_LOG_H_
