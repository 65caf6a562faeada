// A small RAII layer over the SQLite C API: databases opened in WAL mode,
// prepared statements, transactions and numbered schema migrations.
//
// A Database is not thread-safe: give each thread its own, or guard it with a
// mutex (SQLite itself is built serialized, but statements are per-owner).
#ifndef ACCORD_RUNTIME_SQLITE_H_
#define ACCORD_RUNTIME_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace accord::sqlite {

class Statement;

class Database {
 public:
  struct Options {
    bool read_only = false;
    // FULL: a committed transaction survives power loss. NORMAL in WAL mode
    // survives a process crash but may lose the last commits on power loss.
    bool synchronous_full = true;
    int busy_timeout_ms = 5000;
  };

  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        const Options& options);
  static absl::StatusOr<std::unique_ptr<Database>> Open(
      const std::string& path) {
    return Open(path, Options());
  }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results.
  [[nodiscard]] absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // Applies migrations[i] for every schema version i >= the stored version
  // (PRAGMA user_version), each in its own transaction.
  [[nodiscard]] absl::Status Migrate(
      const std::vector<std::string>& migrations);

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
class Statement {
 public:
  Statement(Statement&& o) noexcept : stmt_(o.stmt_), db_(o.db_) {
    o.stmt_ = nullptr;
  }
  Statement& operator=(Statement&& o) noexcept;
  ~Statement();

  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, absl::string_view v);  // TEXT
  Statement& BindBlob(int i, absl::string_view v);
  Statement& BindNull(int i);

  // kRow when a row is available, kDone at the end.
  enum class Step { kRow, kDone };
  absl::StatusOr<Step> Next();
  // Runs to completion, ignoring rows.
  [[nodiscard]] absl::Status Run();
  // Resets for reuse and clears bindings.
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  absl::string_view Text(int col) const;
  absl::string_view Blob(int col) const;
  bool IsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error so
// nothing is half-written.
template <typename Fn>
absl::Status InTransaction(Database& db, Fn&& body) {
  if (auto s = db.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = body();
  if (!s.ok()) {
    (void)db.Exec("ROLLBACK");
    return s;
  }
  if (auto c = db.Exec("COMMIT"); !c.ok()) {
    (void)db.Exec("ROLLBACK");
    return c;
  }
  return absl::OkStatus();
}

}  // namespace accord::sqlite

#endif  // ACCORD_RUNTIME_SQLITE_H_
