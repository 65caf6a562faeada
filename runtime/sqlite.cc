#include "runtime/sqlite.h"

#include "absl/strings/str_cat.h"

namespace accord::sqlite {
namespace {
absl::Status Error(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_extended_errcode(db);
  const std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  if ((code & 0xff) == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(msg);
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}
}  // namespace

absl::StatusOr<std::unique_ptr<Database>> Database::Open(
    const std::string& path, const Options& options) {
  sqlite3* db = nullptr;
  const int flags =
      (options.read_only ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = absl::StrCat(path, ": cannot open database: ",
                                   db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return absl::UnavailableError(msg);
  }
  std::unique_ptr<Database> out(new Database(db, path));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  if (!options.read_only) {
    if (auto s = out->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
  }
  if (auto s =
          out->Exec(options.synchronous_full ? "PRAGMA synchronous=FULL"
                                             : "PRAGMA synchronous=NORMAL");
      !s.ok()) {
    return s;
  }
  if (auto s = out->Exec("PRAGMA foreign_keys=ON"); !s.ok()) return s;
  return out;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::Status Database::Exec(absl::string_view sql) {
  char* err = nullptr;
  const std::string q(sql);
  if (sqlite3_exec(db_, q.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s =
        Error(db_, absl::StrCat(path_, ": ", err ? err : "exec failed"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt,
                         nullptr) != SQLITE_OK) {
    return Error(db_, absl::StrCat(path_, ": prepare"));
  }
  return Statement(stmt, db_);
}

absl::Status Database::Migrate(const std::vector<std::string>& migrations) {
  auto v = Prepare("PRAGMA user_version");
  if (!v.ok()) return v.status();
  auto step = v->Next();
  if (!step.ok()) return step.status();
  const int64_t current = v->Int(0);
  // Finished before migrating: SQLite refuses to drop a table while any
  // statement on the connection is still active.
  v->Reset();
  if (current > static_cast<int64_t>(migrations.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": schema version ", current,
                     " is newer than this program (", migrations.size(), ")"));
  }
  for (size_t i = current; i < migrations.size(); ++i) {
    auto s = InTransaction(*this, [&] {
      if (auto e = Exec(migrations[i]); !e.ok()) return e;
      return Exec(absl::StrCat("PRAGMA user_version=", i + 1));
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = o.stmt_;
    db_ = o.db_;
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::Bind(int i, absl::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindBlob(int i, absl::string_view v) {
  sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

absl::StatusOr<Statement::Step> Statement::Next() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return Step::kRow;
  if (rc == SQLITE_DONE) return Step::kDone;
  return Error(db_, "step");
}

absl::Status Statement::Run() {
  while (true) {
    auto s = Next();
    if (!s.ok()) {
      Reset();
      return s.status();
    }
    if (*s == Step::kDone) break;
  }
  Reset();
  return absl::OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

absl::string_view Statement::Text(int col) const {
  const auto* p =
      reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? absl::string_view(p, sqlite3_column_bytes(stmt_, col))
           : absl::string_view();
}

absl::string_view Statement::Blob(int col) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return p ? absl::string_view(p, sqlite3_column_bytes(stmt_, col))
           : absl::string_view();
}

}  // namespace accord::sqlite
