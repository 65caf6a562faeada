#include "audit/sqlite_audit_log.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit {
namespace sqlite_log {
namespace {

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

}  // namespace

SignedTreeHead HeadFromRow(const Statement& s) {
  SignedTreeHead h;
  h.set_tree_size(static_cast<uint64_t>(s.Int(0)));
  *h.mutable_timestamp() = ToProtoTime(absl::FromUnixMillis(s.Int(1)));
  h.set_root_hash(std::string(s.Blob(2)));
  h.set_signature(std::string(s.Blob(3)));
  h.set_key_id(std::string(s.Text(4)));
  return h;
}

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

}  // namespace sqlite_log

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
  auto log = sqlite_log::SqliteAuditLog::Open(options, std::move(signer));
  if (!log.ok()) return log.status();
  return std::unique_ptr<AuditLog>(std::move(*log));
}

}  // namespace accord::audit
