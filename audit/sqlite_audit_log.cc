#include "audit/sqlite_audit_log.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/hash_store.h"
#include "audit/merkle.h"
#include "runtime/sqlite.h"

namespace accord::audit {
namespace {

using accord::v1::AuditEntry;
using accord::v1::SignedTreeHead;
using sqlite::Statement;
using Step = sqlite::Statement::Step;

std::vector<std::string> Migrations() {
  return {
      absl::StrCat(
          "CREATE TABLE entries("
          "  seq INTEGER PRIMARY KEY,"
          "  time_ns INTEGER NOT NULL,"
          "  caller_org TEXT NOT NULL,"
          "  user_id TEXT NOT NULL,"
          "  purpose TEXT NOT NULL,"
          "  agreement_id TEXT NOT NULL,"
          "  decision INTEGER NOT NULL,"
          "  flag_for_review INTEGER NOT NULL,"
          "  reviewed_by INTEGER,"  // seq of the MarkReviewed entry
          "  leaf BLOB NOT NULL);"
          "CREATE INDEX entries_by_org ON entries(caller_org, seq);"
          "CREATE INDEX entries_by_user ON entries(user_id, seq);"
          "CREATE INDEX entries_by_purpose ON entries(purpose, seq);"
          "CREATE INDEX entries_by_agreement ON entries(agreement_id, seq);"
          "CREATE INDEX entries_by_time ON entries(time_ns);"
          "CREATE INDEX entries_to_review ON entries(seq)"
          "  WHERE flag_for_review = 1 AND reviewed_by IS NULL;"
          "CREATE TABLE entry_subjects("
          "  value TEXT NOT NULL,"
          "  kind INTEGER NOT NULL,"
          "  seq INTEGER NOT NULL,"
          "  PRIMARY KEY (value, kind, seq)) WITHOUT ROWID;"
          "CREATE TABLE tree_heads("
          "  tree_size INTEGER PRIMARY KEY,"
          "  timestamp_ms INTEGER NOT NULL,"
          "  root_hash BLOB NOT NULL,"
          "  signature BLOB NOT NULL,"
          "  key_id TEXT NOT NULL);",
          kMerkleTilesSchema),
      // Version 2: the user and subject-token indexes become one table keyed
      // by epoch first and written in bulk (see WriteKeyIndex), so a commit
      // no longer rewrites a page of a random-keyed index for every entry.
      "CREATE TABLE entry_keys("
      "  epoch INTEGER NOT NULL,"  // seq >> kEpochBits
      "  key TEXT NOT NULL,"       // a user id or a subject token value
      "  tag INTEGER NOT NULL,"    // 0: user id; kind + 1: subject token
      "  seq INTEGER NOT NULL,"
      "  PRIMARY KEY (epoch, key, tag, seq)) WITHOUT ROWID;"
      "INSERT INTO entry_keys SELECT seq >> 16, user_id, 0, seq FROM entries"
      "  WHERE user_id != '';"
      "INSERT OR IGNORE INTO entry_keys"
      "  SELECT seq >> 16, value, kind + 1, seq FROM entry_subjects;"
      "DROP TABLE entry_subjects;"
      "DROP INDEX entries_by_user;"
      "CREATE TABLE index_state("
      "  id INTEGER PRIMARY KEY CHECK (id = 0),"
      "  indexed_upto INTEGER NOT NULL);"
      "INSERT INTO index_state"
      "  SELECT 0, COALESCE(MAX(seq) + 1, 0) FROM entries;",
  };
}

// entry_keys rows are grouped by epochs of 2^16 entries: the rows of one
// bulk write land in the newest epoch's part of the B-tree (a few thousand
// pages at most) instead of all over an index that grows with the log.
constexpr int kEpochBits = 16;

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

constexpr int64_t kUserTag = 0;
int64_t SubjectTag(int kind) { return int64_t{kind} + 1; }

KeyTerm SubjectTerm(const accord::v1::SubjectToken& t) {
  if (t.kind() == accord::v1::TOKEN_KIND_UNSPECIFIED)
    return {t.value(), 1, INT64_MAX};
  return {t.value(), SubjectTag(t.kind()), SubjectTag(t.kind())};
}

// The key rows an entry contributes (what entry_keys holds for it).
void KeyRowsOf(uint64_t seq, const AuditEntry& e, std::vector<KeyRow>* out) {
  if (!e.actor().user_id().empty())
    out->push_back({seq, kUserTag, e.actor().user_id()});
  for (const auto& t : e.subjects())
    out->push_back({seq, SubjectTag(t.kind()), t.value()});
}

// A condition on entries' columns; `bind` binds its parameters (anonymous
// "?", in order) from index `next`, advancing it.
struct Condition {
  std::string sql;
  std::function<void(Statement&, int&)> bind;
};

constexpr char kInsertEntry[] =
    "INSERT INTO entries(seq, time_ns, caller_org, user_id, purpose, "
    "agreement_id, "
    "decision, flag_for_review, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kInsertKey[] =
    "INSERT OR IGNORE INTO entry_keys(epoch, key, tag, seq) VALUES (?, ?, ?, "
    "?)";
constexpr char kSetIndexedUpto[] =
    "UPDATE index_state SET indexed_upto = ? WHERE id = 0";
constexpr char kReviewState[] =
    "SELECT flag_for_review, reviewed_by FROM entries WHERE seq = ?";
constexpr char kSetReviewed[] =
    "UPDATE entries SET reviewed_by = ? WHERE seq = ?";
constexpr char kInsertHead[] =
    "INSERT OR IGNORE INTO tree_heads(tree_size, timestamp_ms, root_hash, "
    "signature, key_id) "
    "VALUES (?, ?, ?, ?, ?)";
constexpr char kSelectHeadColumns[] =
    "SELECT tree_size, timestamp_ms, root_hash, signature, key_id FROM "
    "tree_heads ";

SignedTreeHead HeadFromRow(const Statement& s) {
  SignedTreeHead h;
  h.set_tree_size(static_cast<uint64_t>(s.Int(0)));
  *h.mutable_timestamp() = ToProtoTime(absl::FromUnixMillis(s.Int(1)));
  h.set_root_hash(std::string(s.Blob(2)));
  h.set_signature(std::string(s.Blob(3)));
  h.set_key_id(std::string(s.Text(4)));
  return h;
}

// Page tokens are the next seq to read, opaque to callers.
std::string PageToken(uint64_t next_seq) { return absl::StrCat("s", next_seq); }

absl::StatusOr<uint64_t> ParsePageToken(const std::string& token) {
  if (token.empty()) return 0;
  uint64_t v;
  if (token[0] != 's' ||
      !absl::SimpleAtoi(absl::string_view(token).substr(1), &v)) {
    return absl::InvalidArgumentError("page_token is not one this log issued");
  }
  return v;
}

uint32_t PageSize(uint32_t requested) {
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

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

absl::StatusOr<std::unique_ptr<SqliteAuditLog>> SqliteAuditLog::Open(
    const SqliteAuditLogOptions& options,
    std::shared_ptr<const TreeHeadSigner> signer) {
  std::unique_ptr<SqliteAuditLog> log(
      new SqliteAuditLog(options, std::move(signer)));
  if (auto s = log->Init(); !s.ok()) return s;
  // Named so that `top -H` and profiles show what each thread is.
  log->completer_ = std::thread([p = log.get()] {
    pthread_setname_np(pthread_self(), "audit-complete");
    p->CompletionLoop();
  });
  log->writer_ = std::thread([p = log.get()] {
    pthread_setname_np(pthread_self(), "audit-writer");
    p->WriterLoop();
  });
  log->checkpointer_ = std::thread([p = log.get()] {
    pthread_setname_np(pthread_self(), "audit-ckpt");
    p->CheckpointLoop();
  });
  return log;
}

absl::Status SqliteAuditLog::Init() {
  sqlite::Database::Options write_options;
  write_options.synchronous_full =
      options_.durability == AuditDurability::kPowerLoss;
  auto wdb = sqlite::Database::Open(options_.db_path, write_options);
  if (!wdb.ok()) return wdb.status();
  wdb_ = std::move(*wdb);
  if (auto s = wdb_->Migrate(Migrations()); !s.ok()) return s;
  // Commits only append to the WAL; CheckpointLoop copies it into the
  // database file.
  if (auto s = wdb_->Exec("PRAGMA wal_autocheckpoint=0"); !s.ok()) return s;
  auto prepare = [&](const char* sql,
                     std::optional<Statement>* out) -> absl::Status {
    auto st = wdb_->Prepare(sql);
    if (!st.ok()) return st.status();
    out->emplace(std::move(*st));
    return absl::OkStatus();
  };
  for (auto [sql, out] : {std::pair{kInsertEntry, &insert_entry_},
                          std::pair{kInsertKey, &insert_key_},
                          std::pair{kSetIndexedUpto, &set_indexed_upto_},
                          std::pair{kReviewState, &review_state_},
                          std::pair{kSetReviewed, &set_reviewed_},
                          std::pair{kInsertHead, &insert_head_}}) {
    if (auto s = prepare(sql, out); !s.ok()) return s;
  }
  auto tiles = TileWriter::Create(*wdb_);
  if (!tiles.ok()) return tiles.status();
  tiles_ = std::move(*tiles);
  if (auto s = LoadUnindexed(); !s.ok()) return s;

  absl::MutexLock rl(&read_mu_);
  auto rdb = sqlite::Database::Open(options_.db_path);
  if (!rdb.ok()) return rdb.status();
  rdb_ = std::move(*rdb);
  auto reader = TileReader::Create(*rdb_);
  if (!reader.ok()) return reader.status();
  reader_ = std::move(*reader);

  // Reload: size, compact range, latest head; check the stored tree against it.
  auto size_stmt =
      rdb_->Prepare("SELECT COALESCE(MAX(seq) + 1, 0), COUNT(*) FROM entries");
  if (!size_stmt.ok()) return size_stmt.status();
  if (auto st = size_stmt->Next(); !st.ok()) return st.status();
  const uint64_t size = static_cast<uint64_t>(size_stmt->Int(0));
  if (static_cast<uint64_t>(size_stmt->Int(1)) != size) {
    return absl::DataLossError(absl::StrCat(
        options_.db_path, ": audit log has gaps: ", size_stmt->Int(1),
        " entries up to seq ", size - 1));
  }
  auto range = CompactRange::Load(size, *reader_);
  if (!range.ok()) {
    return absl::DataLossError(absl::StrCat(
        options_.db_path,
        ": Merkle hashes do not cover the log: ", range.status().message()));
  }
  range_ = std::move(*range);
  durable_size_.store(size);

  auto head_stmt = rdb_->Prepare(
      absl::StrCat(kSelectHeadColumns, "ORDER BY tree_size DESC LIMIT 1"));
  if (!head_stmt.ok()) return head_stmt.status();
  auto step = head_stmt->Next();
  if (!step.ok()) return step.status();
  if (*step == Step::kRow) {
    SignedTreeHead head = HeadFromRow(*head_stmt);
    if (head.tree_size() > size) {
      return absl::DataLossError(absl::StrCat(
          options_.db_path, ": a tree head was signed for size ",
          head.tree_size(), " but the log holds only ", size, " entries"));
    }
    reader_->ClearCache();
    auto root = RootFromStore(*reader_, head.tree_size());
    if (!root.ok()) return root.status();
    if (AsBytes(*root) != head.root_hash()) {
      return absl::DataLossError(absl::StrCat(
          options_.db_path,
          ": stored Merkle tree does not match the signed tree head of size ",
          head.tree_size()));
    }
    last_head_size_ = head.tree_size();
    absl::MutexLock l(&mu_);
    latest_head_ = std::move(head);
  }
  return absl::OkStatus();
}

SqliteAuditLog::~SqliteAuditLog() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  {
    absl::MutexLock l(&done_mu_);
    done_stopping_ = true;
  }
  if (completer_.joinable()) completer_.join();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void SqliteAuditLog::CompletionLoop() {
  while (true) {
    Completion c;
    {
      absl::MutexLock l(&done_mu_);
      done_mu_.Await(absl::Condition(this, &SqliteAuditLog::CompletionsDue));
      if (done_.empty()) return;  // stopping and drained
      c = std::move(done_.front());
      done_.pop_front();
      completing_ = true;
    }
    RunCallbacks(c);
    absl::MutexLock l(&done_mu_);
    completing_ = false;
  }
}

void SqliteAuditLog::CheckpointLoop() {
  auto db = sqlite::Database::Open(options_.db_path);
  if (!db.ok())
    return;  // the writer's own WAL keeps working; only growth is unbounded
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(250));
    mu_.Unlock();
    int wal_pages = 0, copied = 0;
    sqlite3_wal_checkpoint_v2((*db)->handle(), nullptr,
                              SQLITE_CHECKPOINT_PASSIVE, &wal_pages, &copied);
    mu_.Lock();
  }
}

void SqliteAuditLog::Enqueue(Pending p) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(p));
      return;
    }
  }
  const absl::Status closed = absl::UnavailableError("audit log is closing");
  if (p.on_durable) p.on_durable(closed);
  if (p.on_head) p.on_head(closed);
}

void SqliteAuditLog::EnqueueEntry(AuditEntry entry, Pending p) {
  entry.clear_seq();
  entry.clear_time();
  p.body = EncodeLeafBody(entry);
  p.utf8 = LeafBodyIsUtf8(p.body);
  KeyRowsOf(0, entry, &p.keys);
  p.caller_org = std::move(*entry.mutable_caller_org());
  p.user_id = std::move(*entry.mutable_actor()->mutable_user_id());
  p.purpose = std::move(*entry.mutable_purpose());
  p.agreement_id = std::move(*entry.mutable_agreement_id());
  p.decision = entry.decision();
  p.flag_for_review = entry.flag_for_review();
  Enqueue(std::move(p));
}

void SqliteAuditLog::Append(AuditEntry entry, DurableCallback on_durable) {
  Pending p;
  p.on_durable = std::move(on_durable);
  EnqueueEntry(std::move(entry), std::move(p));
}

void SqliteAuditLog::MarkReviewed(uint64_t seq, const Reviewer& reviewer,
                                  std::string note,
                                  DurableCallback on_durable) {
  AuditEntry e;
  e.set_method("MarkReviewed");
  e.set_caller(reviewer.caller);
  e.set_caller_org(reviewer.caller_org);
  *e.mutable_actor() = reviewer.actor;
  e.set_request_id(reviewer.request_id);
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  e.set_reviews_seq(seq);
  e.set_review_note(std::move(note));
  Pending p;
  p.kind = Pending::Kind::kReview;
  p.review_target = seq;
  p.on_durable = std::move(on_durable);
  EnqueueEntry(std::move(e), std::move(p));
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::SignTreeHeadNow() {
  if (std::this_thread::get_id() == writer_.get_id() ||
      std::this_thread::get_id() == completer_.get_id()) {
    // A durable callback waiting on the writer would wait on itself.
    return absl::FailedPreconditionError(
        "SignTreeHeadNow called from an audit log callback; post the work "
        "elsewhere");
  }
  absl::Notification done;
  absl::StatusOr<SignedTreeHead> result;
  Pending p;
  p.kind = Pending::Kind::kSignHead;
  p.on_head = [&](absl::StatusOr<SignedTreeHead> h) {
    result = std::move(h);
    done.Notify();
  };
  Enqueue(std::move(p));
  done.WaitForNotification();
  return result;
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::LatestTreeHead() {
  {
    absl::MutexLock l(&mu_);
    if (latest_head_.has_value()) return *latest_head_;
  }
  return SignTreeHeadNow();
}

void SqliteAuditLog::WriterLoop() {
  // Companions arriving within this gap join the batch (bounded by max_delay).
  const absl::Duration gap =
      std::max(options_.max_delay / 4, absl::Microseconds(50));
  while (true) {
    std::vector<Pending> batch;
    bool stop = false;
    {
      absl::MutexLock l(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      if (!has_work()) {
        if (range_.size() > last_head_size_) {
          const absl::Duration wait =
              last_head_real_ + options_.tree_head_interval - absl::Now();
          if (wait > absl::ZeroDuration()) {
            mu_.AwaitWithTimeout(absl::Condition(&has_work), wait);
          }
        } else {
          mu_.Await(absl::Condition(&has_work));
        }
      }
      // Wait for companions: as many as the last batch held (their callers
      // are likely to come back), woken once when they are all here, or
      // when arrivals pause for `gap`, or at max_delay.
      const size_t want = std::min(options_.max_batch, last_batch_size_);
      if (!queue_.empty() && queue_.size() < want && !stopping_ &&
          options_.max_delay > absl::ZeroDuration()) {
        const absl::Time deadline = absl::Now() + options_.max_delay;
        auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return queue_.size() >= want || stopping_;
        };
        while (true) {
          const size_t before = queue_.size();
          const absl::Duration left = deadline - absl::Now();
          if (left <= absl::ZeroDuration()) break;
          if (mu_.AwaitWithTimeout(absl::Condition(&enough),
                                   std::min(left, gap)))
            break;
          if (queue_.size() == before) break;  // arrivals paused
        }
      }
      const size_t n =
          std::min(queue_.size(), std::max<size_t>(options_.max_batch, 1));
      batch.reserve(n);
      if (n > 0) last_batch_size_ = n;
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stop = stopping_ && queue_.empty();
    }
    // Tree heads: on request, and at least every interval while entries arrive.
    std::vector<std::function<void(absl::StatusOr<SignedTreeHead>)>>
        head_requests;
    for (Pending& p : batch) {
      if (p.kind == Pending::Kind::kSignHead)
        head_requests.push_back(std::move(p.on_head));
    }
    if (!batch.empty()) ProcessBatch(std::move(batch));

    const bool due =
        range_.size() > last_head_size_ &&
        (stop || absl::Now() - last_head_real_ >= options_.tree_head_interval);
    std::optional<absl::StatusOr<SignedTreeHead>> head;
    if (due || (!head_requests.empty() && range_.size() > last_head_size_)) {
      head = SignAndStoreHead();
    } else if (!head_requests.empty()) {
      absl::MutexLock l(&mu_);
      if (latest_head_.has_value()) head = *latest_head_;
    }
    if (!head_requests.empty() && !head.has_value()) head = SignAndStoreHead();
    for (auto& cb : head_requests) cb(*head);
    if (stop) return;
  }
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::SignAndStoreHead() {
  auto head =
      signer_->Sign(range_.size(), range_.Root(), options_.clock->Now());
  if (!head.ok()) return head.status();
  Statement& ins = *insert_head_;
  ins.Bind(1, static_cast<int64_t>(head->tree_size()))
      .Bind(2, absl::ToUnixMillis(FromProtoTime(head->timestamp())))
      .BindBlob(3, head->root_hash())
      .BindBlob(4, head->signature())
      .Bind(5, head->key_id());
  if (auto s = ins.Run(); !s.ok()) return s;
  last_head_size_ = head->tree_size();
  last_head_real_ = absl::Now();
  absl::MutexLock l(&mu_);
  if (!latest_head_.has_value() ||
      latest_head_->tree_size() <= head->tree_size()) {
    latest_head_ = *head;
  }
  return head;
}

absl::Status SqliteAuditLog::WriteEntry(Pending& p,
                                        absl::StatusOr<uint64_t>* result,
                                        std::set<uint64_t>* reviewed_in_batch) {
  if (!p.utf8) {
    // Refuse the entry, not the batch, and use no seq.
    *result = absl::InvalidArgumentError(
        "audit entry has a text field that is not valid UTF-8");
    return absl::OkStatus();
  }
  if (p.kind == Pending::Kind::kReview) {
    const uint64_t target = p.review_target;
    if (target >= range_.size()) {
      *result = absl::NotFoundError(
          absl::StrCat("audit entry ", target, " does not exist"));
      return absl::OkStatus();
    }
    Statement& q = *review_state_;
    q.Bind(1, static_cast<int64_t>(target));
    auto step = q.Next();
    if (!step.ok()) {
      q.Reset();
      return step.status();
    }
    const bool found = *step == Step::kRow;
    const bool flagged = found && q.Int(0) != 0;
    const bool reviewed = found && !q.IsNull(1);
    const int64_t reviewed_by = reviewed ? q.Int(1) : -1;
    q.Reset();
    if (!found) {
      *result = absl::NotFoundError(
          absl::StrCat("audit entry ", target, " does not exist"));
      return absl::OkStatus();
    }
    if (!flagged) {
      *result = absl::FailedPreconditionError(
          absl::StrCat("audit entry ", target, " was not flagged for review"));
      return absl::OkStatus();
    }
    if (reviewed || reviewed_in_batch->count(target)) {
      *result = absl::FailedPreconditionError(absl::StrCat(
          "audit entry ", target, " was already reviewed",
          reviewed
              ? absl::StrCat(" (review recorded in entry ", reviewed_by, ")")
              : ""));
      return absl::OkStatus();
    }
  }
  const uint64_t seq = range_.size();
  const absl::Time now = options_.clock->Now();
  std::string& leaf = leaf_;
  leaf.clear();
  AppendLeaf(seq, ToProtoTime(now), p.body, &leaf);
  Statement& ins = *insert_entry_;
  ins.Bind(1, static_cast<int64_t>(seq))
      .Bind(2, absl::ToUnixNanos(now))
      .Bind(3, p.caller_org)
      .Bind(4, p.user_id)
      .Bind(5, p.purpose)
      .Bind(6, p.agreement_id)
      .Bind(7, p.decision)
      .Bind(8, int64_t{p.flag_for_review ? 1 : 0})
      .BindBlob(9, leaf);
  if (auto s = ins.Run(); !s.ok()) return s;
  for (KeyRow& k : p.keys) {
    k.seq = seq;
    unindexed_.push_back(std::move(k));
  }
  if (p.kind == Pending::Kind::kReview) {
    set_reviewed_->Bind(1, static_cast<int64_t>(seq))
        .Bind(2, static_cast<int64_t>(p.review_target));
    if (auto s = set_reviewed_->Run(); !s.ok()) return s;
    reviewed_in_batch->insert(p.review_target);
  }
  range_.Append(LeafHash(leaf),
                [this](int level, uint64_t index, const Hash& h) {
                  tiles_->Add(level, index, h);
                });
  *result = seq;
  return absl::OkStatus();
}

void SqliteAuditLog::ProcessBatch(std::vector<Pending> batch) {
  std::vector<absl::StatusOr<uint64_t>> results(
      batch.size(), absl::InternalError("not written"));
  const CompactRange saved = range_;
  const size_t rows_before = unindexed_.size();
  bool index_written = false;
  absl::Status status = sqlite::InTransaction(*wdb_, [&]() -> absl::Status {
    std::set<uint64_t> reviewed_in_batch;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == Pending::Kind::kSignHead) continue;
      if (auto s = WriteEntry(batch[i], &results[i], &reviewed_in_batch);
          !s.ok())
        return s;
    }
    if (range_.size() - indexed_upto_ >= options_.index_batch) {
      if (auto s = WriteKeyIndex(); !s.ok()) return s;
      index_written = true;
    }
    return tiles_->Flush();
  });
  if (status.ok()) PublishTail(rows_before, index_written);
  if (status.ok() && index_written) {
    unindexed_.clear();
    indexed_upto_ = range_.size();
  }
  if (!status.ok()) {
    // Drop the rolled-back entries' key rows (WriteKeyIndex may have sorted
    // them among the others).
    unindexed_.erase(
        std::remove_if(unindexed_.begin(), unindexed_.end(),
                       [&](const KeyRow& r) { return r.seq >= saved.size(); }),
        unindexed_.end());
    range_ = saved;
    tiles_->Discard();
    const absl::Status failed(
        status.code(),
        absl::StrCat("audit log commit failed: ", status.message()));
    for (auto& r : results) {
      if (r.ok()) r = failed;
    }
  }
  durable_size_.store(range_.size());
  Completion c;
  c.batch = std::move(batch);
  c.results = std::move(results);
  {
    absl::MutexLock l(&done_mu_);
    if (c.batch.size() > kInlineCallbacks || !done_.empty() || completing_) {
      done_.push_back(std::move(c));
      return;
    }
  }
  // A small batch with nothing ahead of it: its callbacks run here, saving
  // the lone request a wake-up of the completion thread.
  RunCallbacks(c);
}

void SqliteAuditLog::PublishTail(size_t first_row, bool index_written) {
  absl::MutexLock l(&tail_mu_);
  if (index_written) {
    tail_.clear();
    tail_mark_ = range_.size();
    return;
  }
  tail_mark_ = indexed_upto_;
  for (size_t i = first_row; i < unindexed_.size(); ++i) {
    const KeyRow& r = unindexed_[i];
    tail_[r.key].push_back({r.tag, r.seq});
  }
}

absl::Status SqliteAuditLog::WriteKeyIndex() {
  std::sort(unindexed_.begin(), unindexed_.end(),
            [](const KeyRow& a, const KeyRow& b) {
              const uint64_t ea = a.seq >> kEpochBits, eb = b.seq >> kEpochBits;
              if (ea != eb) return ea < eb;
              if (int c = a.key.compare(b.key); c != 0) return c < 0;
              if (a.tag != b.tag) return a.tag < b.tag;
              return a.seq < b.seq;
            });
  Statement& ins = *insert_key_;
  for (const KeyRow& r : unindexed_) {
    ins.Bind(1, static_cast<int64_t>(r.seq >> kEpochBits))
        .Bind(2, r.key)
        .Bind(3, r.tag)
        .Bind(4, static_cast<int64_t>(r.seq));
    if (auto s = ins.Run(); !s.ok()) return s;
  }
  set_indexed_upto_->Bind(1, static_cast<int64_t>(range_.size()));
  return set_indexed_upto_->Run();
}

absl::Status SqliteAuditLog::LoadUnindexed() {
  auto mark = wdb_->Prepare("SELECT indexed_upto FROM index_state");
  if (!mark.ok()) return mark.status();
  auto step = mark->Next();
  if (!step.ok()) return step.status();
  if (*step != Step::kRow)
    return absl::DataLossError(
        absl::StrCat(options_.db_path, ": index_state is empty"));
  indexed_upto_ = static_cast<uint64_t>(mark->Int(0));
  auto rows = wdb_->Prepare(
      "SELECT seq, leaf FROM entries WHERE seq >= ? ORDER BY seq");
  if (!rows.ok()) return rows.status();
  rows->Bind(1, static_cast<int64_t>(indexed_upto_));
  while (true) {
    auto next = rows->Next();
    if (!next.ok()) return next.status();
    if (*next == Step::kDone) {
      PublishTail(0, false);
      return absl::OkStatus();
    }
    auto e = DecodeLeaf(rows->Blob(1));
    if (!e.ok()) {
      return absl::DataLossError(absl::StrCat(options_.db_path,
                                              ": audit entry ", rows->Int(0),
                                              ": ", e.status().message()));
    }
    KeyRowsOf(static_cast<uint64_t>(rows->Int(0)), *e, &unindexed_);
  }
}

absl::StatusOr<Statement*> SqliteAuditLog::ReadStatement(
    const std::string& sql) {
  auto it = read_statements_.find(sql);
  if (it != read_statements_.end()) return &it->second;
  if (read_statements_.size() > 256) read_statements_.clear();
  auto st = rdb_->Prepare(sql);
  if (!st.ok()) return st.status();
  return &read_statements_.emplace(sql, std::move(*st)).first->second;
}

absl::StatusOr<std::string> SqliteAuditLog::GetLeaf(uint64_t seq) {
  absl::MutexLock l(&read_mu_);
  auto st = ReadStatement("SELECT leaf FROM entries WHERE seq = ?");
  if (!st.ok()) return st.status();
  Statement& q = **st;
  q.Bind(1, static_cast<int64_t>(seq));
  auto step = q.Next();
  absl::StatusOr<std::string> out =
      absl::NotFoundError(absl::StrCat("audit entry ", seq, " does not exist"));
  if (!step.ok()) {
    out = step.status();
  } else if (*step == Step::kRow) {
    out = std::string(q.Blob(0));
  }
  q.Reset();
  return out;
}

absl::StatusOr<AuditEntry> SqliteAuditLog::GetEntry(uint64_t seq) {
  auto leaf = GetLeaf(seq);
  if (!leaf.ok()) return leaf.status();
  return DecodeLeaf(*leaf);
}

absl::StatusOr<EntryPage> SqliteAuditLog::RunPage(
    const std::vector<Condition>& conditions, const std::vector<KeyTerm>& terms,
    const PageRequest& page) {
  auto start = ParsePageToken(page.page_token);
  if (!start.ok()) return start.status();
  const uint32_t limit = PageSize(page.page_size);
  const int64_t first =
      static_cast<int64_t>(std::min<uint64_t>(*start, INT64_MAX));
  std::string where;
  for (const Condition& c : conditions) absl::StrAppend(&where, " AND ", c.sql);
  auto bind_conditions = [&](Statement& q, int& next) {
    for (const Condition& c : conditions) c.bind(q, next);
  };

  EntryPage out;
  // Reads rows (seq, leaf) in seq order into `out` until the page is full
  // (then sets its next_page_token). Returns true when the page is full.
  auto take = [&](Statement& q) -> absl::StatusOr<bool> {
    while (true) {
      auto step = q.Next();
      if (!step.ok()) return step.status();
      if (*step == Step::kDone) return false;
      auto e = DecodeLeaf(q.Blob(1));
      if (!e.ok()) {
        return absl::DataLossError(
            absl::StrCat("audit entry ", q.Int(0), ": ", e.status().message()));
      }
      if (out.entries.size() == limit) {
        out.next_page_token = PageToken(static_cast<uint64_t>(q.Int(0)));
        return true;
      }
      out.entries.push_back(std::move(*e));
    }
  };
  auto run = [&](const std::string& sql,
                 const std::function<void(Statement&, int&)>& bind)
      -> absl::StatusOr<bool> {
    read_mu_.AssertHeld();  // only called below, under the lock
    auto st = ReadStatement(sql);
    if (!st.ok()) return st.status();
    Statement& q = **st;
    int next = 1;
    bind(q, next);
    auto full = take(q);
    q.Reset();
    return full;
  };

  absl::MutexLock l(&read_mu_);
  if (terms.empty()) {
    auto full = run(absl::StrCat("SELECT seq, leaf FROM entries WHERE seq >= ?",
                                 where, " ORDER BY seq LIMIT ?"),
                    [&](Statement& q, int& next) {
                      q.Bind(next++, first);
                      bind_conditions(q, next);
                      q.Bind(next++, int64_t{limit} + 1);
                    });
    if (!full.ok()) return full.status();
    return out;
  }

  // Entries below the mark are found through entry_keys, one epoch at a
  // time; the newer ones through the in-memory tail. The tail is read first:
  // everything below the mark it gives is committed in entry_keys.
  int64_t mark;
  std::vector<uint64_t> tail_seqs;
  {
    absl::MutexLock tl(&tail_mu_);
    mark = static_cast<int64_t>(tail_mark_);
    for (const KeyTerm& t : terms) {
      auto it = tail_.find(t.key);
      if (it == tail_.end()) continue;
      for (const TailHit& h : it->second) {
        if (t.tag_min <= h.tag && h.tag <= t.tag_max &&
            h.seq >= static_cast<uint64_t>(first))
          tail_seqs.push_back(h.seq);
      }
    }
  }
  std::sort(tail_seqs.begin(), tail_seqs.end());
  tail_seqs.erase(std::unique(tail_seqs.begin(), tail_seqs.end()),
                  tail_seqs.end());

  std::string term_sql;
  for (size_t i = 0; i < terms.size(); ++i) {
    absl::StrAppend(&term_sql, i ? " OR " : "",
                    "(key = ? AND tag BETWEEN ? AND ?)");
  }
  const std::string indexed_sql = absl::StrCat(
      "SELECT seq, leaf FROM entries WHERE seq >= ? AND seq < ?", where,
      " AND seq IN (SELECT seq FROM entry_keys WHERE epoch = ? AND (", term_sql,
      ")) ORDER BY seq LIMIT ?");
  for (int64_t epoch = first >> kEpochBits;
       first < mark && epoch <= (mark - 1) >> kEpochBits; ++epoch) {
    const int64_t from = std::max(first, epoch << kEpochBits);
    const int64_t to = std::min(mark, (epoch + 1) << kEpochBits);
    auto full = run(indexed_sql, [&](Statement& q, int& next) {
      q.Bind(next++, from);
      q.Bind(next++, to);
      bind_conditions(q, next);
      q.Bind(next++, epoch);
      for (const KeyTerm& t : terms) {
        q.Bind(next++, t.key);
        q.Bind(next++, t.tag_min);
        q.Bind(next++, t.tag_max);
      }
      q.Bind(next++,
             int64_t{limit} + 1 - static_cast<int64_t>(out.entries.size()));
    });
    if (!full.ok()) return full.status();
    if (*full) return out;
  }
  const std::string tail_sql =
      absl::StrCat("SELECT seq, leaf FROM entries WHERE seq = ?", where);
  for (uint64_t seq : tail_seqs) {
    auto full = run(tail_sql, [&](Statement& q, int& next) {
      q.Bind(next++, static_cast<int64_t>(seq));
      bind_conditions(q, next);
    });
    if (!full.ok()) return full.status();
    if (*full) return out;
  }
  return out;
}

absl::StatusOr<EntryPage> SqliteAuditLog::Search(const AuditQuery& query,
                                                 const PageRequest& page) {
  std::vector<Condition> conditions;
  auto text = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    conditions.push_back(
        {absl::StrCat(column, " = ?"),
         [&value](Statement& s, int& i) { s.Bind(i++, value); }});
  };
  auto number = [&](const char* sql, int64_t v) {
    conditions.push_back({sql, [v](Statement& s, int& i) { s.Bind(i++, v); }});
  };
  text("caller_org", query.caller_org);
  text("user_id", query.user_id);
  text("purpose", query.purpose);
  text("agreement_id", query.agreement_id);
  if (query.decision != accord::v1::AUDIT_DECISION_UNSPECIFIED)
    number("decision = ?", query.decision);
  if (query.from != absl::InfinitePast())
    number("time_ns >= ?", absl::ToUnixNanos(query.from));
  if (query.until != absl::InfiniteFuture())
    number("time_ns < ?", absl::ToUnixNanos(query.until));
  // The most selective key drives the search; the user id is also checked
  // as a column.
  std::vector<KeyTerm> terms;
  if (!query.subject.value().empty()) {
    terms.push_back(SubjectTerm(query.subject));
  } else if (!query.user_id.empty()) {
    terms.push_back({query.user_id, kUserTag, kUserTag});
  }
  return RunPage(conditions, terms, page);
}

absl::StatusOr<EntryPage> SqliteAuditLog::SubjectAccess(
    const std::vector<accord::v1::SubjectToken>& subjects,
    const PageRequest& page) {
  if (subjects.empty())
    return absl::InvalidArgumentError("subjects: at least one token");
  if (subjects.size() > 100)
    return absl::InvalidArgumentError("subjects: at most 100 tokens");
  std::vector<KeyTerm> terms;
  for (const auto& t : subjects) {
    if (t.value().empty())
      return absl::InvalidArgumentError("subjects: empty token value");
    terms.push_back(SubjectTerm(t));
  }
  return RunPage({}, terms, page);
}

absl::StatusOr<EntryPage> SqliteAuditLog::ReviewQueue(const PageRequest& page) {
  return RunPage({{"flag_for_review = 1 AND reviewed_by IS NULL",
                   [](Statement&, int&) {}}},
                 {}, page);
}

absl::StatusOr<uint64_t> SqliteAuditLog::ResolveSize(uint64_t tree_size) {
  if (tree_size == 0) {
    auto head = LatestTreeHead();
    if (!head.ok()) return head.status();
    return head->tree_size();
  }
  const uint64_t durable = durable_size_.load();
  if (tree_size > durable) {
    return absl::OutOfRangeError(absl::StrCat(
        "tree_size ", tree_size, " exceeds the log's size ", durable));
  }
  return tree_size;
}

absl::StatusOr<accord::v1::InclusionProof> SqliteAuditLog::InclusionProof(
    uint64_t leaf_index, uint64_t tree_size) {
  auto size = ResolveSize(tree_size);
  if (!size.ok()) return size.status();
  if (leaf_index >= *size) {
    return absl::OutOfRangeError(absl::StrCat(
        "leaf_index ", leaf_index, " is not in the tree of size ", *size));
  }
  absl::MutexLock l(&read_mu_);
  reader_->ClearCache();
  auto path = MakeInclusionProof(*reader_, leaf_index, *size);
  if (!path.ok()) return path.status();
  accord::v1::InclusionProof out;
  out.set_leaf_index(leaf_index);
  out.set_tree_size(*size);
  for (const Hash& h : *path) out.add_path(std::string(AsBytes(h)));
  return out;
}

absl::StatusOr<accord::v1::ConsistencyProof> SqliteAuditLog::ConsistencyProof(
    uint64_t first_size, uint64_t second_size) {
  auto second = ResolveSize(second_size);
  if (!second.ok()) return second.status();
  if (first_size > *second) {
    return absl::InvalidArgumentError(absl::StrCat(
        "first_size ", first_size, " exceeds second_size ", *second));
  }
  absl::MutexLock l(&read_mu_);
  reader_->ClearCache();
  auto path = MakeConsistencyProof(*reader_, first_size, *second);
  if (!path.ok()) return path.status();
  accord::v1::ConsistencyProof out;
  out.set_first_size(first_size);
  out.set_second_size(*second);
  for (const Hash& h : *path) out.add_path(std::string(AsBytes(h)));
  return out;
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::TreeHeadAt(uint64_t tree_size) {
  if (tree_size > durable_size_.load()) {
    return absl::OutOfRangeError(absl::StrCat("tree_size ", tree_size,
                                              " exceeds the log's size ",
                                              durable_size_.load()));
  }
  {
    absl::MutexLock l(&mu_);
    if (latest_head_.has_value() && latest_head_->tree_size() == tree_size) {
      return *latest_head_;
    }
  }
  absl::StatusOr<Hash> root;
  {
    absl::MutexLock l(&read_mu_);
    auto st =
        ReadStatement(absl::StrCat(kSelectHeadColumns, "WHERE tree_size = ?"));
    if (!st.ok()) return st.status();
    Statement& q = **st;
    q.Bind(1, static_cast<int64_t>(tree_size));
    auto step = q.Next();
    std::optional<SignedTreeHead> stored;
    if (step.ok() && *step == Step::kRow) stored = HeadFromRow(q);
    q.Reset();
    if (!step.ok()) return step.status();
    if (stored.has_value()) return *stored;
    reader_->ClearCache();
    root = RootFromStore(*reader_, tree_size);
  }
  if (!root.ok()) return root.status();
  return signer_->Sign(tree_size, *root, options_.clock->Now());
}

absl::Status SqliteAuditLog::Export(uint64_t from_seq, uint64_t to_seq,
                                    ExportFormat format,
                                    const ExportSink& sink) {
  absl::StatusOr<SignedTreeHead> head;
  if (to_seq == 0) {
    head = LatestTreeHead();
    if (!head.ok()) return head.status();
    to_seq = head->tree_size();
  } else if (format == ExportFormat::kJsonLines) {
    head = TreeHeadAt(to_seq);
    if (!head.ok()) return head.status();
  } else if (to_seq > durable_size_.load()) {
    return absl::OutOfRangeError(absl::StrCat(
        "to_seq ", to_seq, " exceeds the log's size ", durable_size_.load()));
  }
  if (from_seq > to_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_seq ", from_seq, " is after to_seq ", to_seq));
  }
  // A connection of its own: one consistent snapshot, no lock held while the
  // sink (a gRPC stream) is slow.
  sqlite::Database::Options ro;
  ro.read_only = true;
  auto db = sqlite::Database::Open(options_.db_path, ro);
  if (!db.ok()) return db.status();
  if (auto s = (*db)->Exec("BEGIN"); !s.ok()) return s;

  ExportProgress progress;
  progress.entries_total = to_seq - from_seq;
  std::string chunk;
  constexpr size_t kChunkBytes = 64 * 1024;
  if (format == ExportFormat::kJsonLines) {
    auto reader = TileReader::Create(**db);
    if (!reader.ok()) return reader.status();
    auto prefix = CompactRange::Load(from_seq, **reader);
    if (!prefix.ok()) return prefix.status();
    chunk = ExportHeaderLine({from_seq, to_seq, prefix->nodes()});
  } else {
    chunk = CsvHeader();
  }
  auto q = (*db)->Prepare(
      "SELECT seq, leaf FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq");
  if (!q.ok()) return q.status();
  q->Bind(1, static_cast<int64_t>(from_seq))
      .Bind(2, static_cast<int64_t>(to_seq));
  uint64_t expected = from_seq;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Step::kDone) break;
    const uint64_t seq = static_cast<uint64_t>(q->Int(0));
    if (seq != expected) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", expected, " is missing"));
    }
    ++expected;
    const absl::string_view leaf = q->Blob(1);
    auto entry = DecodeLeaf(leaf);
    if (!entry.ok()) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", seq, ": ", entry.status().message()));
    }
    chunk.append(format == ExportFormat::kJsonLines ? JsonLine(*entry, leaf)
                                                    : CsvLine(*entry, leaf));
    ++progress.entries_so_far;
    if (chunk.size() >= kChunkBytes) {
      if (auto s = sink(chunk, progress); !s.ok()) return s;
      chunk.clear();
    }
  }
  if (expected != to_seq) {
    return absl::DataLossError(
        absl::StrCat("audit entry ", expected, " is missing"));
  }
  if (format == ExportFormat::kJsonLines) chunk.append(TreeHeadLine(*head));
  (void)(*db)->Exec("COMMIT");
  return sink(chunk, progress);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> OpenSqliteAuditLog(
    const SqliteAuditLogOptions& options) {
  if (options.clock == nullptr)
    return absl::InvalidArgumentError("audit log: clock is required");
  if (options.db_path.empty())
    return absl::InvalidArgumentError("audit log: db_path is required");
  std::shared_ptr<const TreeHeadSigner> signer = options.signer;
  if (signer == nullptr) {
    if (options.signing_key_file.empty()) {
      return absl::InvalidArgumentError(
          "audit log: a tree head signer or signing_key_file is required");
    }
    auto loaded = TreeHeadSigner::FromKeyFile(options.signing_key_file);
    if (!loaded.ok()) return loaded.status();
    signer = std::move(*loaded);
  }
  auto log = SqliteAuditLog::Open(options, std::move(signer));
  if (!log.ok()) return log.status();
  return std::unique_ptr<AuditLog>(std::move(*log));
}

}  // namespace accord::audit
