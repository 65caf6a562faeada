// AuditLog on SQLite (WAL; synchronous=FULL by default, see AuditDurability):
// the embedded default for a single gateway.
//
// Append encodes the entry on the caller's thread and queues it. One writer
// thread owns the write connection: it takes everything queued (up to
// max_batch, waiting at most max_delay for companions), prefixes seq and time,
// and commits the batch in ONE transaction — entries, their search columns
// and Merkle tiles together — so concurrent requests share fsyncs (group
// commit). The user and subject-token index follows in bulk (index_batch).
// Only then does a completion thread run the batch's callbacks, while the
// writer goes on. The writer signs a tree head at least every
// tree_head_interval while entries arrive. Its only in-memory tree state is
// the compact range, reloaded from the tiles on restart.
//
// Queries and proofs use a separate read connection; each export opens its
// own. Thread-safe.
#ifndef ACCORD_AUDIT_SQLITE_AUDIT_LOG_H_
#define ACCORD_AUDIT_SQLITE_AUDIT_LOG_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/audit_log.h"
#include "audit/tree_head.h"
#include "runtime/clock.h"

namespace accord::audit {

// What "committed" survives before on_durable is called.
enum class AuditDurability {
  // synchronous=FULL: every commit is fsynced; survives power loss, OS crash
  // and SIGKILL. The default.
  kPowerLoss,
  // synchronous=NORMAL: a commit is written to the WAL (the OS holds it) but
  // fsynced only at checkpoints (every 250 ms): survives SIGKILL or a crash
  // of the gateway process, NOT power loss or an OS crash, which may lose
  // the last fraction of a second of entries whose answers were released.
  kProcessCrash,
};

struct SqliteAuditLogOptions {
  std::string db_path;
  // The tree head signing key: `signer` when set, else loaded from
  // `signing_key_file` (PEM Ed25519, not readable by group or others).
  std::shared_ptr<const TreeHeadSigner> signer;
  std::string signing_key_file;
  const Clock* clock = nullptr;  // required; outlives the log
  AuditDurability durability = AuditDurability::kPowerLoss;
  absl::Duration max_delay = absl::Milliseconds(2);
  size_t max_batch = 1024;
  // The user and subject-token search index is written in bulk, in the
  // commit that brings the number of entries not yet in it to index_batch;
  // searches scan those newest entries instead. Larger: cheaper appends,
  // longer scans (and one slower commit per index_batch entries).
  size_t index_batch = 8192;
  absl::Duration tree_head_interval = absl::Seconds(1);
};

// Opens (creating if needed) the log, reloads its compact range and latest
// tree head, checks the stored root against the latest tree head, and starts
// the writer. The log flushes queued appends when destroyed.
absl::StatusOr<std::unique_ptr<AuditLog>> OpenSqliteAuditLog(
    const SqliteAuditLogOptions& options);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_SQLITE_AUDIT_LOG_H_
