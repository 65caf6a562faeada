// The SQLite audit log's implementation, shared by its files (not a public
// header: use audit/sqlite_audit_log.h). One class, split along its seams:
//   sqlite_audit_log.cc          schema, opening and reloading the log
//   sqlite_audit_log_writer.cc   the queue, group commit, tree heads, callbacks
//   sqlite_audit_log_index.cc    the user and subject-token index (entry_keys)
//   sqlite_audit_log_queries.cc  entries, searches, subject access, review
//   queue sqlite_audit_log_proofs.cc   inclusion and consistency proofs, heads
//   by size sqlite_audit_log_export.cc   JSON Lines and CSV exports
// Thread-safety as in audit/sqlite_audit_log.h.
#ifndef ACCORD_AUDIT_SQLITE_AUDIT_LOG_IMPL_H_
#define ACCORD_AUDIT_SQLITE_AUDIT_LOG_IMPL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "audit/hash_store.h"
#include "audit/merkle.h"
#include "audit/sqlite_audit_log.h"
#include "runtime/sqlite.h"

namespace accord::audit::sqlite_log {

using accord::v1::AuditEntry;
using accord::v1::SignedTreeHead;
using sqlite::Statement;
using Step = sqlite::Statement::Step;

// entry_keys rows are grouped by epochs of 2^16 entries: the rows of one
// bulk write land in the newest epoch's part of the B-tree (a few thousand
// pages at most) instead of all over an index that grows with the log.
inline constexpr int kEpochBits = 16;

// One row of entry_keys, held in memory until its bulk write.
struct KeyRow {
  uint64_t seq;
  int64_t tag;
  std::string key;
};

// Search terms on entry_keys: `key` with a tag in [tag_min, tag_max].
struct KeyTerm {
  std::string key;
  int64_t tag_min;
  int64_t tag_max;
};

inline constexpr int64_t kUserTag = 0;
inline int64_t SubjectTag(int kind) { return int64_t{kind} + 1; }

KeyTerm SubjectTerm(const accord::v1::SubjectToken& t);

// The key rows an entry contributes (what entry_keys holds for it).
void KeyRowsOf(uint64_t seq, const AuditEntry& e, std::vector<KeyRow>* out);

// A condition on entries' columns; `bind` binds its parameters (anonymous
// "?", in order) from index `next`, advancing it.
struct Condition {
  std::string sql;
  std::function<void(Statement&, int&)> bind;
};

inline constexpr char kSelectHeadColumns[] =
    "SELECT tree_size, timestamp_ms, root_hash, signature, key_id FROM "
    "tree_heads ";
SignedTreeHead HeadFromRow(const Statement& s);

struct Pending {
  enum class Kind { kAppend, kReview, kSignHead };
  Kind kind = Kind::kAppend;
  // Everything the writer needs from the entry, taken on the appending
  // thread: the leaf body without seq and time (the writer prefixes them),
  // the search columns, and the key rows (seq set by the writer).
  std::string body;
  bool utf8 = true;  // every text field is valid UTF-8
  std::string caller_org, user_id, purpose, agreement_id;
  int64_t decision = 0;
  bool flag_for_review = false;
  std::vector<KeyRow> keys;
  uint64_t review_target = 0;
  AuditLog::DurableCallback on_durable;
  std::function<void(absl::StatusOr<SignedTreeHead>)> on_head;
};

class SqliteAuditLog final : public AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteAuditLog>> Open(
      const SqliteAuditLogOptions& options,
      std::shared_ptr<const TreeHeadSigner> signer);
  ~SqliteAuditLog() override;

  void Append(AuditEntry entry, DurableCallback on_durable) override;
  absl::StatusOr<SignedTreeHead> LatestTreeHead() override;
  absl::StatusOr<SignedTreeHead> SignTreeHeadNow() override;
  absl::StatusOr<SignedTreeHead> TreeHeadAt(uint64_t tree_size) override;
  absl::StatusOr<AuditEntry> GetEntry(uint64_t seq) override;
  absl::StatusOr<std::string> GetLeaf(uint64_t seq) override;
  absl::StatusOr<EntryPage> Search(const AuditQuery& query,
                                   const PageRequest& page) override;
  absl::StatusOr<EntryPage> SubjectAccess(
      const std::vector<accord::v1::SubjectToken>& subjects,
      const PageRequest& page) override;
  absl::StatusOr<EntryPage> ReviewQueue(const PageRequest& page) override;
  void MarkReviewed(uint64_t seq, const Reviewer& reviewer, std::string note,
                    DurableCallback on_durable) override;
  absl::StatusOr<accord::v1::InclusionProof> InclusionProof(
      uint64_t leaf_index, uint64_t tree_size) override;
  absl::StatusOr<accord::v1::ConsistencyProof> ConsistencyProof(
      uint64_t first_size, uint64_t second_size) override;
  absl::Status Export(uint64_t from_seq, uint64_t to_seq, ExportFormat format,
                      const ExportSink& sink) override;
  uint64_t Size() override { return durable_size_.load(); }

 private:
  SqliteAuditLog(const SqliteAuditLogOptions& options,
                 std::shared_ptr<const TreeHeadSigner> signer)
      : options_(options), signer_(std::move(signer)) {}

  absl::Status Init();
  // Encodes the entry on the calling thread, then queues it for the writer.
  void EnqueueEntry(AuditEntry entry, Pending p);
  void Enqueue(Pending p);

  // Writer thread.
  void WriterLoop();
  void ProcessBatch(std::vector<Pending> batch);
  absl::Status WriteEntry(Pending& p, absl::StatusOr<uint64_t>* result,
                          std::set<uint64_t>* reviewed_in_batch);
  // Writes unindexed_ to entry_keys in key order and moves the index_state
  // mark to the log's size, inside the batch's transaction.
  absl::Status WriteKeyIndex();
  // Init: reads the mark and rebuilds unindexed_ from the entries after it.
  absl::Status LoadUnindexed();
  absl::StatusOr<SignedTreeHead> SignAndStoreHead();
  // Hands callbacks to the completion thread, which runs them in order.
  // The whole batch moves there, so that it is also freed off the writer.
  struct Completion {
    std::vector<Pending> batch;
    std::vector<absl::StatusOr<uint64_t>> results;
  };
  void CompletionLoop();
  static void RunCallbacks(Completion& c) {
    for (size_t i = 0; i < c.batch.size(); ++i) {
      if (c.batch[i].on_durable) c.batch[i].on_durable(std::move(c.results[i]));
    }
  }
  // Batches this small run their callbacks on the writer when nothing is
  // queued or running ahead of them (callbacks stay in order).
  static constexpr size_t kInlineCallbacks = 2;
  bool CompletionsDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(done_mu_) {
    return !done_.empty() || done_stopping_;
  }

  // Read side: `read_mu_` held.
  absl::StatusOr<Statement*> ReadStatement(const std::string& sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  // One page of entries matching every condition and, when `terms` is not
  // empty, any of the terms.
  absl::StatusOr<EntryPage> RunPage(const std::vector<Condition>& conditions,
                                    const std::vector<KeyTerm>& terms,
                                    const PageRequest& page);
  absl::StatusOr<uint64_t> ResolveSize(uint64_t tree_size);

  const SqliteAuditLogOptions options_;
  const std::shared_ptr<const TreeHeadSigner> signer_;

  // Owned by the writer thread after Init.
  std::unique_ptr<sqlite::Database> wdb_;
  std::optional<Statement> insert_entry_, insert_key_, set_indexed_upto_,
      review_state_, set_reviewed_, insert_head_;
  // entry_keys rows of the entries from indexed_upto_ on, written in bulk
  // once there are options_.index_batch such entries.
  std::vector<KeyRow> unindexed_;
  uint64_t indexed_upto_ = 0;

  // The committed part of unindexed_, for searches: key -> (tag, seq) in seq
  // order, and the mark below which entry_keys holds everything. The writer
  // adds a batch's rows after its commit and empties it after a bulk write.
  struct TailHit {
    int64_t tag;
    uint64_t seq;
  };
  void PublishTail(size_t first_row, bool index_written);
  absl::Mutex tail_mu_;
  absl::flat_hash_map<std::string, std::vector<TailHit>> tail_
      ABSL_GUARDED_BY(tail_mu_);
  uint64_t tail_mark_ ABSL_GUARDED_BY(tail_mu_) = 0;
  std::unique_ptr<TileWriter> tiles_;
  CompactRange range_;
  uint64_t last_head_size_ = 0;
  absl::Time last_head_real_ = absl::InfinitePast();
  std::thread writer_;
  // Runs durable callbacks, so the writer goes on to the next batch while the
  // callers of the last one are woken.
  std::thread completer_;
  size_t last_batch_size_ = 1;  // writer thread
  std::string leaf_;            // writer thread: reused buffer
  // Checkpoints the WAL on its own connection, off the writer's commit path.
  std::thread checkpointer_;
  void CheckpointLoop();

  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<SignedTreeHead> latest_head_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> durable_size_{0};

  absl::Mutex done_mu_;
  std::deque<Completion> done_ ABSL_GUARDED_BY(done_mu_);
  bool done_stopping_ ABSL_GUARDED_BY(done_mu_) = false;
  bool completing_ ABSL_GUARDED_BY(done_mu_) = false;  // callbacks running

  absl::Mutex read_mu_;
  std::unique_ptr<sqlite::Database> rdb_ ABSL_GUARDED_BY(read_mu_);
  std::unique_ptr<TileReader> reader_ ABSL_GUARDED_BY(read_mu_);
  std::map<std::string, Statement> read_statements_ ABSL_GUARDED_BY(read_mu_);
};

}  // namespace accord::audit::sqlite_log

#endif  // ACCORD_AUDIT_SQLITE_AUDIT_LOG_IMPL_H_
