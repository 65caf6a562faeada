// Internal to the agent's store (agent/store*.cc): the connection and
// reader classes, and the helpers the store's parts share. Not a public
// header: include agent/store.h.
#ifndef ACCORD_AGENT_STORE_INTERNAL_H_
#define ACCORD_AGENT_STORE_INTERNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/store.h"
#include "runtime/sqlite.h"

namespace accord::agent {
namespace store_internal {

using sqlite::Database;
using sqlite::Statement;

// The schema migrations (store_schema.cc); see AgentStoreMigrations.
const std::vector<std::string>& Migrations();
// accord_unhex(text), registered on the writer for schema migration 4.
void UnhexToken(sqlite3_context* ctx, int argc, sqlite3_value** argv);

inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// A token's value (64 lower-case hex characters, linkage/tokens.h) as the 32
// bytes the store keeps; false for anything else.
constexpr size_t kTokenBytes = 32;
bool TokenBytes(absl::string_view hex, char* out);

template <typename Msg>
absl::StatusOr<Msg> ParseBody(absl::string_view blob, absl::string_view what) {
  Msg m;
  if (!m.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is corrupt"));
  }
  return m;
}

// OK when `body`, a serialised `Msg`, parses back: the store never keeps what
// it could not read. (Protobuf checks UTF-8 in string fields when it parses,
// not when it serialises.) InvalidArgument otherwise, naming `what`.
template <typename Msg>
absl::Status ReadsBack(const std::string& body, absl::string_view what) {
  // Parsed into one message per thread, whose storage is reused: an import
  // checks a few messages per row.
  static thread_local Msg scratch;
  if (scratch.ParseFromString(body)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what,
                   ": not stored: it would not read back (a text field is "
                   "not valid UTF-8)"));
}

// A consent's body with its withdrawal (the first 'withdrawn' event) filled in.
inline constexpr char kConsentColumns[] =
    "c.body, (SELECT e.at FROM consent_events e WHERE e.consent_id = c.id AND "
    "e.event = 'withdrawn' ORDER BY e.seq LIMIT 1), (SELECT e.recorded_by FROM "
    "consent_events e WHERE e.consent_id = c.id AND e.event = 'withdrawn' "
    "ORDER BY e.seq LIMIT 1)";

// The consent read from kConsentColumns, starting at `first_column`.
absl::StatusOr<accord::v1::ConsentRecord> ConsentFromRow(const Statement& q,
                                                         int first_column);

// Records that a read left out row `row_id` of `table` because it does not
// parse (`why`), appending it to `skipped` when given; logs it to stderr with
// the table and row id only.
void Skip(absl::string_view table, int64_t row_id, const absl::Status& why,
          accord::v1::DataCategory category, std::vector<SkippedRow>* skipped);

// Runs `q` to the end, calling `row` for each row.
template <typename Fn>
absl::Status EachRow(Statement& q, Fn&& row) {
  while (true) {
    auto step = q.Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) return absl::OkStatus();
    if (auto s = row(); !s.ok()) return s;
  }
}

}  // namespace store_internal

// One SQLite connection and the statements prepared on it. Statements are
// prepared once and reused; ResetAll() ends every statement in use so a
// reader connection holds no snapshot between uses (a pooled reader must see
// the latest consent, e.g. a withdrawal, the next time it is used).
class AgentStore::Connection {
 public:
  explicit Connection(std::unique_ptr<sqlite::Database> db)
      : db_(std::move(db)) {}
  sqlite::Database& db() { return *db_; }

  // The statement for `sql`, reset and unbound, ready to use. `sql` must
  // stay valid and unchanged while the connection lives (a literal, or a
  // static string): statements are found by its address, which costs
  // nothing next to hashing the text on every use.
  absl::StatusOr<sqlite::Statement*> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      it->second->Reset();
      return it->second.get();
    }
    auto stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto owned = std::make_unique<sqlite::Statement>(std::move(*stmt));
    sqlite::Statement* out = owned.get();
    cache_.emplace(sql, std::move(owned));
    return out;
  }
  void ResetAll() {
    for (auto& [sql, stmt] : cache_) stmt->Reset();
  }

 private:
  std::unique_ptr<sqlite::Database> db_;
  absl::flat_hash_map<const char*, std::unique_ptr<sqlite::Statement>> cache_;
};

// A reader connection taken from the pool for one read, returned when this
// goes out of scope.
class AgentStore::Reader {
 public:
  explicit Reader(AgentStore* store) : store_(store) {}
  ~Reader() {
    if (conn_) {
      conn_->ResetAll();
      store_->ReleaseReader(std::move(conn_));
    }
  }
  absl::Status Acquire() {
    auto conn = store_->AcquireReader();
    if (!conn.ok()) return conn.status();
    conn_ = std::move(*conn);
    return absl::OkStatus();
  }
  absl::StatusOr<sqlite::Statement*> Prepare(const char* sql) {
    return conn_->Prepare(sql);
  }
  Connection* conn() { return conn_.get(); }

 private:
  AgentStore* store_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_STORE_INTERNAL_H_
