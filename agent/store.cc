// The agent store's core: opening it (schema, writer connection, the
// checkpoint thread), transactions, and the pool of reader connections.
#include "agent/store.h"

#include <array>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/store_internal.h"

namespace accord::agent {

using store_internal::Database;
using store_internal::Statement;

namespace store_internal {

bool TokenBytes(absl::string_view hex, char* out) {
  static constexpr auto kNibble = [] {
    std::array<int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
    return t;
  }();
  if (hex.size() != 2 * kTokenBytes) return false;
  for (size_t i = 0; i < kTokenBytes; ++i) {
    const int hi = kNibble[static_cast<unsigned char>(hex[2 * i])];
    const int lo = kNibble[static_cast<unsigned char>(hex[2 * i + 1])];
    if ((hi | lo) < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

}  // namespace store_internal

// Checkpoints on a connection and thread of their own. The writer's WAL hook
// (called after every commit) asks for one when the WAL holds kWalPages
// pages; a PASSIVE checkpoint never blocks the writer or readers, and
// copies what it can (frames still needed by a reader's snapshot wait for
// the next one).
class AgentStore::Checkpointer {
 public:
  // 32 MiB of 4 KiB pages rather than SQLite's 4 MiB, so a page rewritten by
  // consecutive import batches is copied back once.
  static constexpr int kWalPages = 8192;
  static constexpr int kMaxWalPages = 8 * kWalPages;

  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(
      const std::string& path) {
    auto db = Database::Open(path);
    if (!db.ok()) return db.status();
    return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(*db)));
  }
  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // sqlite3_wal_hook callback: runs on the writer's thread after a commit.
  // The WAL starts again from its beginning only once a checkpoint has
  // caught up with it; should the writer outrun the thread for long (a very
  // large import), the writer checkpoints itself, as SQLite would, so the
  // WAL stays bounded.
  static int OnCommit(void* self, sqlite3* db, const char*, int wal_pages) {
    if (wal_pages >= kWalPages) {
      auto* c = static_cast<Checkpointer*>(self);
      absl::MutexLock lock(&c->mu_);
      c->requested_ = true;
    }
    if (wal_pages >= kMaxWalPages) {
      (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                      nullptr, nullptr);
    }
    return SQLITE_OK;
  }

 private:
  explicit Checkpointer(std::unique_ptr<Database> db)
      : db_(std::move(db)), thread_([this] { Run(); }) {}

  void Run() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto wanted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return requested_ || stop_;
        };
        mu_.Await(absl::Condition(&wanted));
        if (stop_) return;
        requested_ = false;
      }
      // A failure (e.g. SQLITE_BUSY while another checkpoint runs) leaves
      // the WAL to the next request; nothing is lost either way.
      (void)sqlite3_wal_checkpoint_v2(
          db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
  }

  std::unique_ptr<Database> db_;
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is ready
};

absl::StatusOr<std::unique_ptr<AgentStore>> AgentStore::Open(
    const std::string& path) {
  auto db = Database::Open(path);
  if (!db.ok()) return db.status();
  // Savepoints (one per import row) keep their undo data in memory rather
  // than a temporary file, and a large batch stays in the page cache until
  // it commits instead of spilling into the WAL page by page.
  if (auto s = (*db)->Exec("PRAGMA temp_store=MEMORY; PRAGMA "
                           "cache_size=-65536");
      !s.ok()) {
    return s;
  }
  if (sqlite3_create_function_v2((*db)->handle(), "accord_unhex", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                 store_internal::UnhexToken, nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("agent store ", path, ": cannot register accord_unhex"));
  }
  if (auto s = (*db)->Migrate(store_internal::Migrations()); !s.ok()) return s;
  auto checkpointer = Checkpointer::Start(path);
  if (!checkpointer.ok()) return checkpointer.status();
  // Replaces SQLite's own checkpoint-on-commit.
  sqlite3_wal_hook((*db)->handle(), &Checkpointer::OnCommit,
                   checkpointer->get());
  return std::unique_ptr<AgentStore>(
      new AgentStore(std::make_unique<Connection>(std::move(*db)), path,
                     std::move(*checkpointer)));
}

const std::vector<std::string>& AgentStoreMigrations() {
  return store_internal::Migrations();
}

AgentStore::AgentStore(std::unique_ptr<Connection> writer, std::string path,
                       std::unique_ptr<Checkpointer> checkpointer)
    : path_(std::move(path)),
      writer_(std::move(writer)),
      checkpointer_(std::move(checkpointer)) {}

AgentStore::~AgentStore() {
  {
    absl::MutexLock lock(&write_mu_);
    sqlite3_wal_hook(writer_->db().handle(), nullptr, nullptr);
  }
  checkpointer_.reset();
}

absl::Status AgentStore::Write(
    const std::function<absl::Status(Writer&)>& body) {
  absl::MutexLock lock(&write_mu_);
  Connection& conn = *writer_;  // the lambda below runs under the lock
  Writer w(conn);
  return sqlite::InTransaction(conn.db(), [&] {
    absl::Status s = body(w);
    if (s.ok()) s = w.WriteDeferredTokens();
    conn.ResetAll();
    return s;
  });
}

absl::StatusOr<std::unique_ptr<AgentStore::Connection>>
AgentStore::AcquireReader() {
  {
    absl::MutexLock lock(&pool_mu_);
    if (!readers_.empty()) {
      auto conn = std::move(readers_.back());
      readers_.pop_back();
      return conn;
    }
  }
  Database::Options options;
  options.read_only = true;
  auto db = Database::Open(path_, options);
  if (!db.ok()) return db.status();
  // Readers map the file (no copy per page read) and keep a page cache
  // large enough for the token and subject indexes' upper levels.
  if (auto s = (*db)->Exec("PRAGMA mmap_size=4294967296; PRAGMA "
                           "cache_size=-16384");
      !s.ok()) {
    return s;
  }
  return std::make_unique<Connection>(std::move(*db));
}

void AgentStore::ReleaseReader(std::unique_ptr<Connection> conn) {
  absl::MutexLock lock(&pool_mu_);
  if (readers_.size() < 16) readers_.push_back(std::move(conn));
}

absl::Status AgentStore::Read(
    const std::function<absl::Status(Snapshot&)>& body) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  Connection& conn = *r.conn();
  auto begin = conn.Prepare("BEGIN");
  if (!begin.ok()) return begin.status();
  if (auto s = (*begin)->Run(); !s.ok()) return s;
  Snapshot snapshot(&conn);
  absl::Status s = body(snapshot);
  conn.ResetAll();
  auto end = conn.Prepare(s.ok() ? "COMMIT" : "ROLLBACK");
  if (!end.ok()) return end.status();
  absl::Status e = (*end)->Run();
  return s.ok() ? e : s;
}

}  // namespace accord::agent
