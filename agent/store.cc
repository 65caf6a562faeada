#include "agent/store.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::agent {
namespace {

using sqlite::Database;
using sqlite::Statement;

const std::vector<std::string>& Migrations() {  // see AgentStoreMigrations
  static const auto* kMigrations = new std::vector<std::string>{
      // Version 1: subjects, tokens, records, consent (append-only history),
      // engagements.
      R"sql(
      CREATE TABLE subjects(
        id INTEGER PRIMARY KEY,
        local_id TEXT NOT NULL UNIQUE,
        body BLOB NOT NULL,            -- accord.v1.Subject
        updated_at INTEGER NOT NULL);
      CREATE TABLE subject_tokens(
        token TEXT NOT NULL,
        kind INTEGER NOT NULL,
        subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        PRIMARY KEY(token, kind, subject_id)) WITHOUT ROWID;
      CREATE INDEX subject_tokens_subject ON subject_tokens(subject_id);
      CREATE TABLE records(
        id INTEGER PRIMARY KEY,
        local_id TEXT NOT NULL UNIQUE,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        category INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Record
      CREATE INDEX records_subject ON records(subject_id);
      CREATE TABLE consents(
        id TEXT PRIMARY KEY,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        body BLOB NOT NULL);           -- accord.v1.ConsentRecord, withdrawn_at stamped
      CREATE INDEX consents_subject ON consents(subject_id);
      CREATE TABLE consent_events(
        seq INTEGER PRIMARY KEY,
        consent_id TEXT NOT NULL REFERENCES consents(id),
        event TEXT NOT NULL,           -- 'given' or 'withdrawn'
        at INTEGER NOT NULL,
        recorded_by TEXT NOT NULL);
      CREATE TABLE engagements(
        id INTEGER PRIMARY KEY,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        service TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Engagement
      CREATE INDEX engagements_subject ON engagements(subject_id);
      )sql",
      // Version 2: consent history is append-only, enforced by the schema.
      // A withdrawal is an event of its own; the consent is never changed.
      R"sql(
      CREATE INDEX consent_events_consent ON consent_events(consent_id, event);
      CREATE TRIGGER consents_never_updated BEFORE UPDATE ON consents
        BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
      CREATE TRIGGER consents_never_deleted BEFORE DELETE ON consents
        BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
      CREATE TRIGGER consent_events_never_updated BEFORE UPDATE ON consent_events
        BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
      CREATE TRIGGER consent_events_never_deleted BEFORE DELETE ON consent_events
        BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
      CREATE INDEX engagements_identity ON engagements(subject_id, service,
                                                       started_at);
      )sql",
      // Version 3: referral inbox (delivered to this agent) and outbox (sent by
      // it).
      R"sql(
      CREATE TABLE referrals(
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        box INTEGER NOT NULL,          -- accord.v1.ReferralBox
        state INTEGER NOT NULL,
        history INTEGER NOT NULL,      -- status entries held
        idempotency_key TEXT,
        updated_at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Referral, payload sealed
      CREATE INDEX referrals_box ON referrals(box, seq);
      CREATE INDEX referrals_key ON referrals(idempotency_key);
      )sql",
      // Version 4: tokens are kept as their 32 bytes rather than 64 hex
      // characters, which halves the token index and the subject index (an
      // index of a WITHOUT ROWID table carries its key) and the cost of
      // comparing keys. accord_unhex is registered on the connection by
      // AgentStore::Open and refuses anything but a token's hex form, so a
      // store holding a malformed token fails to upgrade rather than losing
      // it. Hex text sorts as its bytes do, so the copy is in key order.
      R"sql(
      CREATE TABLE subject_tokens_v4(
        token BLOB NOT NULL,           -- HMAC-SHA256 (linkage/tokens.h), 32 bytes
        kind INTEGER NOT NULL,
        subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        PRIMARY KEY(token, kind, subject_id)) WITHOUT ROWID;
      INSERT INTO subject_tokens_v4(token, kind, subject_id)
        SELECT accord_unhex(token), kind, subject_id FROM subject_tokens
        ORDER BY token, kind, subject_id;
      DROP TABLE subject_tokens;
      ALTER TABLE subject_tokens_v4 RENAME TO subject_tokens;
      CREATE INDEX subject_tokens_subject ON subject_tokens(subject_id);
      )sql",
  };
  return *kMigrations;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// A token's value (64 lower-case hex characters, linkage/tokens.h) as the 32
// bytes the store keeps; false for anything else.
constexpr size_t kTokenBytes = 32;
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

// accord_unhex(text): the token's bytes, for schema migration 4.
void UnhexToken(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  (void)argc;
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  char bytes[kTokenBytes];
  if (text == nullptr ||
      !TokenBytes(absl::string_view(
                      text, static_cast<size_t>(sqlite3_value_bytes(argv[0]))),
                  bytes)) {
    sqlite3_result_error(ctx, "a stored subject token is not 64 hex digits",
                         -1);
    return;
  }
  sqlite3_result_blob(ctx, bytes, kTokenBytes, SQLITE_TRANSIENT);
}

template <typename Msg>
absl::StatusOr<Msg> ParseBody(absl::string_view blob, absl::string_view what) {
  Msg m;
  if (!m.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is corrupt"));
  }
  return m;
}

// A consent's body with its withdrawal (the first 'withdrawn' event) filled in.
constexpr char kConsentColumns[] =
    "c.body, (SELECT e.at FROM consent_events e WHERE e.consent_id = c.id AND "
    "e.event = 'withdrawn' ORDER BY e.seq LIMIT 1), (SELECT e.recorded_by FROM "
    "consent_events e WHERE e.consent_id = c.id AND e.event = 'withdrawn' "
    "ORDER BY e.seq LIMIT 1)";

absl::StatusOr<accord::v1::ConsentRecord> ConsentFromRow(const Statement& q,
                                                         int first_column) {
  auto c =
      ParseBody<accord::v1::ConsentRecord>(q.Blob(first_column), "consent");
  if (!c.ok()) return c.status();
  if (!q.IsNull(first_column + 1) && !c->has_withdrawn_at()) {
    *c->mutable_withdrawn_at() =
        ToProtoTime(absl::FromUnixMicros(q.Int(first_column + 1)));
  }
  if (!q.IsNull(first_column + 2))
    c->set_withdrawn_by(std::string(q.Text(first_column + 2)));
  return c;
}

}  // namespace

// One SQLite connection and the statements prepared on it. Statements are
// prepared once and reused; ResetAll() ends every statement in use so a
// reader connection holds no snapshot between uses (a pooled reader must see
// the latest consent, e.g. a withdrawal, the next time it is used).
class AgentStore::Connection {
 public:
  explicit Connection(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  Database& db() { return *db_; }

  // The statement for `sql`, reset and unbound, ready to use. `sql` must
  // stay valid and unchanged while the connection lives (a literal, or a
  // static string): statements are found by its address, which costs
  // nothing next to hashing the text on every use.
  absl::StatusOr<Statement*> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      it->second->Reset();
      return it->second.get();
    }
    auto stmt = db_->Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    auto owned = std::make_unique<Statement>(std::move(*stmt));
    Statement* out = owned.get();
    cache_.emplace(sql, std::move(owned));
    return out;
  }
  void ResetAll() {
    for (auto& [sql, stmt] : cache_) stmt->Reset();
  }

 private:
  std::unique_ptr<Database> db_;
  absl::flat_hash_map<const char*, std::unique_ptr<Statement>> cache_;
};

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
                                 UnhexToken, nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
    return absl::InternalError(
        absl::StrCat("agent store ", path, ": cannot register accord_unhex"));
  }
  if (auto s = (*db)->Migrate(Migrations()); !s.ok()) return s;
  auto checkpointer = Checkpointer::Start(path);
  if (!checkpointer.ok()) return checkpointer.status();
  // Replaces SQLite's own checkpoint-on-commit.
  sqlite3_wal_hook((*db)->handle(), &Checkpointer::OnCommit,
                   checkpointer->get());
  return std::unique_ptr<AgentStore>(
      new AgentStore(std::make_unique<Connection>(std::move(*db)), path,
                     std::move(*checkpointer)));
}

const std::vector<std::string>& AgentStoreMigrations() { return Migrations(); }

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

absl::Status AgentStore::Writer::Savepoint(
    const std::function<absl::Status()>& body) {
  if (defer_tokens_) {
    return absl::InternalError(
        "agent store: a savepoint cannot undo deferred token writes");
  }
  Database& db = conn_.db();
  if (auto s = db.Exec("SAVEPOINT row"); !s.ok()) return s;
  absl::Status s = body();
  if (!s.ok()) {
    cached_local_id_.clear();
    conn_.ResetAll();
    (void)db.Exec("ROLLBACK TO row");
    (void)db.Exec("RELEASE row");
    return s;
  }
  return db.Exec("RELEASE row");
}

absl::StatusOr<int64_t> AgentStore::Writer::SubjectId(
    const std::string& local_id) {
  if (!cached_local_id_.empty() && local_id == cached_local_id_) {
    if (cached_id_ == 0) {
      return absl::NotFoundError(
          absl::StrCat("no subject with local_id '", local_id, "'"));
    }
    return cached_id_;
  }
  auto q = conn_.Prepare("SELECT id FROM subjects WHERE local_id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, local_id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) {
    Remember(local_id, 0);
    return absl::NotFoundError(
        absl::StrCat("no subject with local_id '", local_id, "'"));
  }
  const int64_t id = (*q)->Int(0);
  (*q)->Reset();
  Remember(local_id, id);
  return id;
}

absl::StatusOr<accord::v1::Subject> AgentStore::Writer::FindSubject(
    const std::string& local_id) {
  auto q = conn_.Prepare("SELECT id, body FROM subjects WHERE local_id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, local_id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) {
    Remember(local_id, 0);
    return absl::NotFoundError(
        absl::StrCat("no subject with local_id '", local_id, "'"));
  }
  Remember(local_id, (*q)->Int(0));
  auto subject = ParseBody<accord::v1::Subject>((*q)->Blob(1), "subject");
  (*q)->Reset();
  return subject;
}

absl::StatusOr<bool> AgentStore::Writer::UpsertSubject(
    const accord::v1::Subject& subject,
    const std::vector<accord::v1::SubjectToken>& tokens) {
  auto existing = SubjectId(subject.local_id());
  if (!existing.ok() &&
      existing.status().code() != absl::StatusCode::kNotFound) {
    return existing.status();
  }
  const bool created = !existing.ok();
  const std::string body = subject.SerializeAsString();
  const int64_t now = Micros(absl::Now());
  int64_t id = 0;
  if (created) {
    auto ins = conn_.Prepare(
        "INSERT INTO subjects(local_id, body, updated_at) VALUES(?,?,?)");
    if (!ins.ok()) return ins.status();
    (*ins)->Bind(1, subject.local_id()).BindBlob(2, body).Bind(3, now);
    if (auto s = (*ins)->Run(); !s.ok()) return s;
    id = conn_.db().LastInsertRowId();
    Remember(subject.local_id(), id);
  } else {
    id = *existing;
    auto upd = conn_.Prepare(
        "UPDATE subjects SET body = ?, updated_at = ? WHERE id = ?");
    if (!upd.ok()) return upd.status();
    (*upd)->BindBlob(1, body).Bind(2, now).Bind(3, id);
    if (auto s = (*upd)->Run(); !s.ok()) return s;
    auto del = conn_.Prepare("DELETE FROM subject_tokens WHERE subject_id = ?");
    if (!del.ok()) return del.status();
    (*del)->Bind(1, id);
    if (auto s = (*del)->Run(); !s.ok()) return s;
    // And the tokens an earlier upsert in this transaction left to write.
    if (auto it = deferred_of_subject_.find(id);
        it != deferred_of_subject_.end()) {
      for (size_t i = it->second;
           i < deferred_tokens_.size() && deferred_tokens_[i].subject_id == id;
           ++i) {
        deferred_tokens_[i].subject_id = 0;
      }
      deferred_of_subject_.erase(it);
    }
  }
  if (defer_tokens_ && !tokens.empty())
    deferred_of_subject_[id] = deferred_tokens_.size();
  for (const auto& t : tokens) {
    DeferredToken d;
    if (!TokenBytes(t.value(), d.bytes.data())) {
      return absl::InvalidArgumentError(
          "field tokens.value: must be 64 lower-case hex characters (a "
          "subject token)");
    }
    d.kind = static_cast<int64_t>(t.kind());
    d.subject_id = id;
    if (defer_tokens_) {
      deferred_tokens_.push_back(d);
    } else if (auto s = InsertToken(d.bytes.data(), d.kind, id); !s.ok()) {
      return s;
    }
  }
  return created;
}

absl::Status AgentStore::Writer::InsertToken(const char* bytes, int64_t kind,
                                             int64_t subject_id) {
  auto tok = conn_.Prepare(
      "INSERT OR IGNORE INTO subject_tokens(token, kind, subject_id) "
      "VALUES(?,?,?)");
  if (!tok.ok()) return tok.status();
  (*tok)
      ->BindBlob(1, absl::string_view(bytes, kTokenBytes))
      .Bind(2, kind)
      .Bind(3, subject_id);
  return (*tok)->Run();
}

absl::Status AgentStore::Writer::WriteDeferredTokens() {
  if (deferred_tokens_.empty()) return absl::OkStatus();
  std::sort(deferred_tokens_.begin(), deferred_tokens_.end(),
            [](const DeferredToken& a, const DeferredToken& b) {
              const int c =
                  std::memcmp(a.bytes.data(), b.bytes.data(), kTokenBytes);
              if (c != 0) return c < 0;
              if (a.kind != b.kind) return a.kind < b.kind;
              return a.subject_id < b.subject_id;
            });
  for (const auto& d : deferred_tokens_) {
    if (d.subject_id == 0) continue;
    if (auto s = InsertToken(d.bytes.data(), d.kind, d.subject_id); !s.ok())
      return s;
  }
  deferred_tokens_.clear();
  deferred_of_subject_.clear();
  return absl::OkStatus();
}

absl::StatusOr<bool> AgentStore::Writer::UpsertRecord(
    const accord::v1::Record& record) {
  auto subject = SubjectId(record.subject_local_id());
  if (!subject.ok()) return subject.status();
  const std::string body = record.SerializeAsString();
  // A new record (the usual case) is one statement; an existing one is
  // replaced by a second.
  auto ins = conn_.Prepare(
      "INSERT INTO records(local_id, subject_id, category, body) "
      "VALUES(?,?,?,?) ON CONFLICT(local_id) DO NOTHING");
  if (!ins.ok()) return ins.status();
  (*ins)
      ->Bind(1, record.local_id())
      .Bind(2, *subject)
      .Bind(3, static_cast<int64_t>(record.category()))
      .BindBlob(4, body);
  if (auto s = (*ins)->Run(); !s.ok()) return s;
  if (conn_.db().Changes() > 0) return true;
  auto upd = conn_.Prepare(
      "UPDATE records SET subject_id = ?, category = ?, body = ? "
      "WHERE local_id = ?");
  if (!upd.ok()) return upd.status();
  (*upd)
      ->Bind(1, *subject)
      .Bind(2, static_cast<int64_t>(record.category()))
      .BindBlob(3, body)
      .Bind(4, record.local_id());
  if (auto s = (*upd)->Run(); !s.ok()) return s;
  return false;
}

absl::StatusOr<std::string> AgentStore::Writer::RecordConsent(
    accord::v1::ConsentRecord consent) {
  if (consent.has_withdrawn_at() || !consent.withdrawn_by().empty()) {
    return absl::InvalidArgumentError(
        "field consent.withdrawn_at: a new consent cannot already be "
        "withdrawn; record it, then withdraw it");
  }
  auto subject = SubjectId(consent.subject_local_id());
  if (!subject.ok()) return subject.status();
  if (consent.id().empty())
    consent.set_id(absl::StrCat("consent-", HexEncode(RandomBytes(8))));
  auto q =
      conn_.Prepare("INSERT INTO consents(id, subject_id, body) VALUES(?,?,?)");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, consent.id())
      .Bind(2, *subject)
      .BindBlob(3, consent.SerializeAsString());
  if (auto s = (*q)->Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("consent '", consent.id(),
                       "' already exists; consent history is "
                       "never overwritten"));
    }
    return s;
  }
  auto ev = conn_.Prepare(
      "INSERT INTO consent_events(consent_id, event, at, recorded_by) "
      "VALUES(?, 'given', ?, ?)");
  if (!ev.ok()) return ev.status();
  (*ev)
      ->Bind(1, consent.id())
      .Bind(2, Micros(FromProtoTime(consent.given_at())))
      .Bind(3, consent.recorded_by());
  if (auto s = (*ev)->Run(); !s.ok()) return s;
  return consent.id();
}

absl::StatusOr<accord::v1::ConsentRecord> AgentStore::Writer::FindConsent(
    const std::string& consent_id) {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", kConsentColumns, " FROM consents c WHERE c.id = ?"));
  auto q = conn_.Prepare(kSql->c_str());
  if (!q.ok()) return q.status();
  (*q)->Bind(1, consent_id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) {
    return absl::NotFoundError(
        absl::StrCat("no consent with id '", consent_id, "'"));
  }
  auto c = ConsentFromRow(**q, 0);
  (*q)->Reset();
  return c;
}

absl::Status AgentStore::Writer::WithdrawConsent(
    const std::string& consent_id, absl::Time at,
    const std::string& recorded_by) {
  auto consent = FindConsent(consent_id);
  if (!consent.ok()) return consent.status();
  if (consent->has_withdrawn_at()) {
    return absl::FailedPreconditionError(
        absl::StrCat("consent '", consent_id, "' was already withdrawn"));
  }
  if (at < FromProtoTime(consent->given_at())) {
    return absl::InvalidArgumentError(
        absl::StrCat("field withdrawn_at: consent '", consent_id,
                     "' cannot be withdrawn before it was given"));
  }
  auto ev = conn_.Prepare(
      "INSERT INTO consent_events(consent_id, event, at, recorded_by) "
      "VALUES(?, 'withdrawn', ?, ?)");
  if (!ev.ok()) return ev.status();
  (*ev)->Bind(1, consent_id).Bind(2, Micros(at)).Bind(3, recorded_by);
  return (*ev)->Run();
}

absl::StatusOr<std::string> AgentStore::Writer::RecordEngagement(
    const accord::v1::Engagement& engagement) {
  auto subject = SubjectId(engagement.subject_local_id());
  if (!subject.ok()) return subject.status();
  const int64_t started = Micros(FromProtoTime(engagement.started_at()));
  auto find = conn_.Prepare(
      "SELECT id FROM engagements WHERE subject_id = ? AND service = ? AND "
      "started_at = ?");
  if (!find.ok()) return find.status();
  (*find)->Bind(1, *subject).Bind(2, engagement.service()).Bind(3, started);
  auto step = (*find)->Next();
  if (!step.ok()) return step.status();
  if (*step == Statement::Step::kRow) {
    const int64_t id = (*find)->Int(0);
    (*find)->Reset();
    auto upd = conn_.Prepare("UPDATE engagements SET body = ? WHERE id = ?");
    if (!upd.ok()) return upd.status();
    (*upd)->BindBlob(1, engagement.SerializeAsString()).Bind(2, id);
    if (auto s = (*upd)->Run(); !s.ok()) return s;
    return absl::StrCat("engagement-", id);
  }
  auto q = conn_.Prepare(
      "INSERT INTO engagements(subject_id, service, started_at, body) "
      "VALUES(?,?,?,?)");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, *subject)
      .Bind(2, engagement.service())
      .Bind(3, started)
      .BindBlob(4, engagement.SerializeAsString());
  if (auto s = (*q)->Run(); !s.ok()) return s;
  return absl::StrCat("engagement-", conn_.db().LastInsertRowId());
}

// ---------------------------------------------------------------------------
// Reads

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
  absl::StatusOr<Statement*> Prepare(const char* sql) {
    return conn_->Prepare(sql);
  }
  Connection* conn() { return conn_.get(); }

 private:
  AgentStore* store_;
  std::unique_ptr<Connection> conn_;
};

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

namespace {

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

}  // namespace

absl::StatusOr<std::vector<int64_t>> AgentStore::Snapshot::FindByToken(
    const accord::v1::SubjectToken& token) {
  std::vector<int64_t> ids;
  char bytes[kTokenBytes];
  // Not the form of a token: no subject has it.
  if (!TokenBytes(token.value(), bytes)) return ids;
  auto q = conn_->Prepare(
      "SELECT subject_id FROM subject_tokens WHERE token = ? AND kind = ?");
  if (!q.ok()) return q.status();
  (*q)->BindBlob(1, absl::string_view(bytes, kTokenBytes))
      .Bind(2, static_cast<int64_t>(token.kind()));
  auto s = EachRow(**q, [&] {
    ids.push_back((*q)->Int(0));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return ids;
}

absl::StatusOr<SubjectView> AgentStore::Snapshot::LoadSubject(
    int64_t id, bool with_records) {
  auto q = conn_->Prepare("SELECT body FROM subjects WHERE id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow)
    return absl::NotFoundError("subject not found");
  SubjectView view;
  view.id = id;
  auto subject = ParseBody<accord::v1::Subject>((*q)->Blob(0), "subject");
  if (!subject.ok()) return subject.status();
  view.subject = std::move(*subject);
  if (with_records) {
    auto rq = conn_->Prepare(
        "SELECT body FROM records WHERE subject_id = ? ORDER BY id");
    if (!rq.ok()) return rq.status();
    (*rq)->Bind(1, id);
    auto s = EachRow(**rq, [&]() -> absl::Status {
      auto rec = ParseBody<accord::v1::Record>((*rq)->Blob(0), "record");
      if (!rec.ok()) return rec.status();
      view.records.push_back(std::move(*rec));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return view;
}

absl::StatusOr<std::vector<accord::v1::ConsentRecord>>
AgentStore::Snapshot::ConsentsOf(int64_t subject_id) {
  static const std::string* const kSql = new std::string(
      absl::StrCat("SELECT ", kConsentColumns,
                   " FROM consents c WHERE c.subject_id = ? ORDER BY c.rowid"));
  auto q = conn_->Prepare(kSql->c_str());
  if (!q.ok()) return q.status();
  (*q)->Bind(1, subject_id);
  std::vector<accord::v1::ConsentRecord> out;
  auto s = EachRow(**q, [&]() -> absl::Status {
    auto c = ConsentFromRow(**q, 0);
    if (!c.ok()) return c.status();
    out.push_back(std::move(*c));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

// One-call reads: a snapshot of their own.
absl::StatusOr<std::vector<int64_t>> AgentStore::FindByToken(
    const accord::v1::SubjectToken& token) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  return Snapshot(r.conn()).FindByToken(token);
}

absl::StatusOr<SubjectView> AgentStore::LoadSubject(int64_t id,
                                                    bool with_records) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  return Snapshot(r.conn()).LoadSubject(id, with_records);
}

absl::StatusOr<std::vector<accord::v1::ConsentRecord>> AgentStore::ConsentsOf(
    int64_t subject_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  return Snapshot(r.conn()).ConsentsOf(subject_id);
}

absl::StatusOr<std::vector<accord::v1::Engagement>> AgentStore::EngagementsOf(
    int64_t subject_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  return Snapshot(r.conn()).EngagementsOf(subject_id);
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

absl::StatusOr<std::vector<accord::v1::ConsentRecord>> AgentStore::Consents(
    const std::string& subject_local_id) {
  int64_t id = 0;
  {
    Reader r(this);
    if (auto s = r.Acquire(); !s.ok()) return s;
    auto q = r.Prepare("SELECT id FROM subjects WHERE local_id = ?");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, subject_local_id);
    auto step = (*q)->Next();
    if (!step.ok()) return step.status();
    if (*step != Statement::Step::kRow) {
      return absl::NotFoundError(
          absl::StrCat("no subject with local_id '", subject_local_id, "'"));
    }
    id = (*q)->Int(0);
  }
  return ConsentsOf(id);
}

absl::StatusOr<std::vector<accord::v1::Engagement>>
AgentStore::Snapshot::EngagementsOf(int64_t subject_id) {
  auto q = conn_->Prepare(
      "SELECT body FROM engagements WHERE subject_id = ? ORDER BY started_at");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, subject_id);
  std::vector<accord::v1::Engagement> out;
  auto s = EachRow(**q, [&]() -> absl::Status {
    auto e = ParseBody<accord::v1::Engagement>((*q)->Blob(0), "engagement");
    if (!e.ok()) return e.status();
    out.push_back(std::move(*e));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>> AgentStore::TokensOf(
    const std::string& local_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(
      "SELECT t.token, t.kind FROM subject_tokens t JOIN subjects s ON s.id = "
      "t.subject_id WHERE s.local_id = ? ORDER BY t.kind");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, local_id);
  std::vector<accord::v1::SubjectToken> out;
  auto s = EachRow(**q, [&] {
    accord::v1::SubjectToken t;
    t.set_value(HexEncode((*q)->Blob(0)));
    t.set_kind(static_cast<accord::v1::TokenKind>((*q)->Int(1)));
    out.push_back(std::move(t));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no subject with local_id '", local_id, "'"));
  }
  return out;
}

absl::StatusOr<int64_t> AgentStore::SubjectCount() {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare("SELECT count(*) FROM subjects");
  if (!q.ok()) return q.status();
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  return (*q)->Int(0);
}

// ---------------------------------------------------------------------------
// Referrals

namespace {
absl::StatusOr<StoredReferral> ReadStoredReferral(Statement& q) {
  auto r = ParseBody<accord::v1::Referral>(q.Blob(2), "referral");
  if (!r.ok()) return r.status();
  StoredReferral out;
  out.seq = q.Int(0);
  out.box = static_cast<accord::v1::ReferralBox>(q.Int(1));
  out.referral = std::move(*r);
  return out;
}
}  // namespace

absl::StatusOr<bool> AgentStore::MergeReferral(
    const accord::v1::Referral& referral, accord::v1::ReferralBox insert_box) {
  bool changed = false;
  absl::Status s = Write([&](Writer& w) -> absl::Status {
    Connection& conn = w.conn_;
    auto q = conn.Prepare("SELECT history FROM referrals WHERE id = ?");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, referral.id());
    auto step = (*q)->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kRow) {
      if ((*q)->Int(0) >= referral.history_size()) return absl::OkStatus();
      auto upd = conn.Prepare(
          "UPDATE referrals SET state = ?, history = ?, updated_at = ?, "
          "body = ? WHERE id = ?");
      if (!upd.ok()) return upd.status();
      (*upd)
          ->Bind(1, static_cast<int64_t>(referral.state()))
          .Bind(2, static_cast<int64_t>(referral.history_size()))
          .Bind(3, Micros(absl::Now()))
          .BindBlob(4, referral.SerializeAsString())
          .Bind(5, referral.id());
      changed = true;
      return (*upd)->Run();
    }
    if (insert_box == accord::v1::REFERRAL_BOX_UNSPECIFIED)
      return absl::OkStatus();
    auto ins = conn.Prepare(
        "INSERT INTO referrals(id, box, state, history, idempotency_key, "
        "updated_at, body) VALUES(?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    (*ins)
        ->Bind(1, referral.id())
        .Bind(2, static_cast<int64_t>(insert_box))
        .Bind(3, static_cast<int64_t>(referral.state()))
        .Bind(4, static_cast<int64_t>(referral.history_size()));
    if (referral.idempotency_key().empty() ||
        insert_box != accord::v1::REFERRAL_BOX_OUTBOX) {
      (*ins)->BindNull(5);
    } else {
      (*ins)->Bind(5, referral.idempotency_key());
    }
    (*ins)
        ->Bind(6, Micros(absl::Now()))
        .BindBlob(7, referral.SerializeAsString());
    changed = true;
    return (*ins)->Run();
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindReferral(
    const std::string& id) {
  return FindOneReferral("SELECT seq, box, body FROM referrals WHERE id = ?",
                         id);
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindOutboxByKey(
    const std::string& idempotency_key) {
  return FindOneReferral(
      "SELECT seq, box, body FROM referrals WHERE idempotency_key = ? AND "
      "box = 2",
      idempotency_key);
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindOneReferral(
    const char* sql, const std::string& value) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(sql);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, value);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) return std::optional<StoredReferral>();
  auto out = ReadStoredReferral(**q);
  if (!out.ok()) return out.status();
  return std::optional<StoredReferral>(std::move(*out));
}

absl::StatusOr<std::vector<StoredReferral>> AgentStore::ListReferrals(
    accord::v1::ReferralBox box, accord::v1::ReferralState state,
    int64_t after_seq, int limit) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(
      "SELECT seq, box, body FROM referrals WHERE seq > ? "
      "AND (? = 0 OR box = ?) AND (? = 0 OR state = ?) ORDER BY seq LIMIT ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, after_seq)
      .Bind(2, static_cast<int64_t>(box))
      .Bind(3, static_cast<int64_t>(box))
      .Bind(4, static_cast<int64_t>(state))
      .Bind(5, static_cast<int64_t>(state))
      .Bind(6, static_cast<int64_t>(limit));
  std::vector<StoredReferral> out;
  while (true) {
    auto step = (*q)->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    auto one = ReadStoredReferral(**q);
    if (!one.ok()) return one.status();
    out.push_back(std::move(*one));
  }
  return out;
}

}  // namespace accord::agent
