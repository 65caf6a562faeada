#include "agent/store.h"

#include "absl/strings/str_cat.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::agent {
namespace {

using sqlite::Database;
using sqlite::Statement;

const std::vector<std::string>& Migrations() {
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
      // Referral inbox (delivered to this agent) and outbox (sent by it).
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
  };
  return *kMigrations;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

template <typename Msg>
absl::StatusOr<Msg> ParseBody(absl::string_view blob, absl::string_view what) {
  Msg m;
  if (!m.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " is corrupt"));
  }
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentStore>> AgentStore::Open(
    const std::string& path) {
  auto db = Database::Open(path);
  if (!db.ok()) return db.status();
  if (auto s = (*db)->Migrate(Migrations()); !s.ok()) return s;
  return std::unique_ptr<AgentStore>(new AgentStore(std::move(*db), path));
}

AgentStore::AgentStore(std::unique_ptr<Database> writer, std::string path)
    : path_(std::move(path)), writer_(std::move(writer)) {}

AgentStore::~AgentStore() = default;

absl::Status AgentStore::Write(
    const std::function<absl::Status(Writer&)>& body) {
  absl::MutexLock lock(&write_mu_);
  Writer w(*writer_);
  return sqlite::InTransaction(*writer_, [&] { return body(w); });
}

absl::Status AgentStore::Writer::Savepoint(
    const std::function<absl::Status()>& body) {
  if (auto s = db_.Exec("SAVEPOINT row"); !s.ok()) return s;
  absl::Status s = body();
  if (!s.ok()) {
    (void)db_.Exec("ROLLBACK TO row");
    (void)db_.Exec("RELEASE row");
    return s;
  }
  return db_.Exec("RELEASE row");
}

absl::StatusOr<int64_t> AgentStore::Writer::SubjectId(
    const std::string& local_id) {
  auto q = db_.Prepare("SELECT id FROM subjects WHERE local_id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, local_id);
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) {
    return absl::NotFoundError(
        absl::StrCat("no subject with local_id '", local_id, "'"));
  }
  return q->Int(0);
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
  int64_t id = 0;
  if (created) {
    auto ins = db_.Prepare(
        "INSERT INTO subjects(local_id, body, updated_at) VALUES(?,?,?)");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, subject.local_id())
        .BindBlob(2, body)
        .Bind(3, Micros(absl::Now()));
    if (auto s = ins->Run(); !s.ok()) return s;
    id = db_.LastInsertRowId();
  } else {
    id = *existing;
    auto upd = db_.Prepare(
        "UPDATE subjects SET body = ?, updated_at = ? WHERE id = ?");
    if (!upd.ok()) return upd.status();
    upd->BindBlob(1, body).Bind(2, Micros(absl::Now())).Bind(3, id);
    if (auto s = upd->Run(); !s.ok()) return s;
    auto del = db_.Prepare("DELETE FROM subject_tokens WHERE subject_id = ?");
    if (!del.ok()) return del.status();
    del->Bind(1, id);
    if (auto s = del->Run(); !s.ok()) return s;
  }
  auto tok = db_.Prepare(
      "INSERT OR IGNORE INTO subject_tokens(token, kind, subject_id) "
      "VALUES(?,?,?)");
  if (!tok.ok()) return tok.status();
  for (const auto& t : tokens) {
    tok->Bind(1, t.value()).Bind(2, static_cast<int64_t>(t.kind())).Bind(3, id);
    if (auto s = tok->Run(); !s.ok()) return s;
  }
  return created;
}

absl::StatusOr<bool> AgentStore::Writer::UpsertRecord(
    const accord::v1::Record& record) {
  auto subject = SubjectId(record.subject_local_id());
  if (!subject.ok()) return subject.status();
  auto q = db_.Prepare(
      "INSERT INTO records(local_id, subject_id, category, body) "
      "VALUES(?,?,?,?) "
      "ON CONFLICT(local_id) DO UPDATE SET subject_id = excluded.subject_id, "
      "category = excluded.category, body = excluded.body");
  if (!q.ok()) return q.status();
  auto exists = db_.Prepare("SELECT 1 FROM records WHERE local_id = ?");
  if (!exists.ok()) return exists.status();
  exists->Bind(1, record.local_id());
  auto step = exists->Next();
  if (!step.ok()) return step.status();
  const bool created = *step != Statement::Step::kRow;
  q->Bind(1, record.local_id())
      .Bind(2, *subject)
      .Bind(3, static_cast<int64_t>(record.category()))
      .BindBlob(4, record.SerializeAsString());
  if (auto s = q->Run(); !s.ok()) return s;
  return created;
}

absl::StatusOr<std::string> AgentStore::Writer::RecordConsent(
    accord::v1::ConsentRecord consent) {
  auto subject = SubjectId(consent.subject_local_id());
  if (!subject.ok()) return subject.status();
  if (consent.id().empty())
    consent.set_id(absl::StrCat("consent-", HexEncode(RandomBytes(8))));
  if (consent.has_withdrawn_at()) {
    return absl::InvalidArgumentError(
        "a new consent cannot already be withdrawn");
  }
  auto q =
      db_.Prepare("INSERT INTO consents(id, subject_id, body) VALUES(?,?,?)");
  if (!q.ok()) return q.status();
  q->Bind(1, consent.id())
      .Bind(2, *subject)
      .BindBlob(3, consent.SerializeAsString());
  if (auto s = q->Run(); !s.ok()) {
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          absl::StrCat("consent '", consent.id(),
                       "' already exists; consent history is "
                       "never overwritten"));
    }
    return s;
  }
  auto ev = db_.Prepare(
      "INSERT INTO consent_events(consent_id, event, at, recorded_by) "
      "VALUES(?, 'given', ?, ?)");
  if (!ev.ok()) return ev.status();
  ev->Bind(1, consent.id())
      .Bind(2, Micros(FromProtoTime(consent.given_at())))
      .Bind(3, consent.recorded_by());
  if (auto s = ev->Run(); !s.ok()) return s;
  return consent.id();
}

absl::Status AgentStore::Writer::WithdrawConsent(
    const std::string& consent_id, absl::Time at,
    const std::string& recorded_by) {
  auto q = db_.Prepare("SELECT body FROM consents WHERE id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, consent_id);
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) {
    return absl::NotFoundError(
        absl::StrCat("no consent with id '", consent_id, "'"));
  }
  auto consent = ParseBody<accord::v1::ConsentRecord>(q->Blob(0), "consent");
  if (!consent.ok()) return consent.status();
  if (consent->has_withdrawn_at()) {
    return absl::FailedPreconditionError(
        absl::StrCat("consent '", consent_id, "' was already withdrawn"));
  }
  *consent->mutable_withdrawn_at() = ToProtoTime(at);
  auto upd = db_.Prepare("UPDATE consents SET body = ? WHERE id = ?");
  if (!upd.ok()) return upd.status();
  upd->BindBlob(1, consent->SerializeAsString()).Bind(2, consent_id);
  if (auto s = upd->Run(); !s.ok()) return s;
  auto ev = db_.Prepare(
      "INSERT INTO consent_events(consent_id, event, at, recorded_by) "
      "VALUES(?, 'withdrawn', ?, ?)");
  if (!ev.ok()) return ev.status();
  ev->Bind(1, consent_id).Bind(2, Micros(at)).Bind(3, recorded_by);
  return ev->Run();
}

absl::StatusOr<std::string> AgentStore::Writer::RecordEngagement(
    const accord::v1::Engagement& engagement) {
  auto subject = SubjectId(engagement.subject_local_id());
  if (!subject.ok()) return subject.status();
  auto q = db_.Prepare(
      "INSERT INTO engagements(subject_id, service, started_at, body) "
      "VALUES(?,?,?,?)");
  if (!q.ok()) return q.status();
  q->Bind(1, *subject)
      .Bind(2, engagement.service())
      .Bind(3, Micros(FromProtoTime(engagement.started_at())))
      .BindBlob(4, engagement.SerializeAsString());
  if (auto s = q->Run(); !s.ok()) return s;
  return absl::StrCat("engagement-", db_.LastInsertRowId());
}

// ---------------------------------------------------------------------------
// Reads

class AgentStore::Reader {
 public:
  explicit Reader(AgentStore* store) : store_(store) {}
  ~Reader() {
    if (db_) store_->ReleaseReader(std::move(db_));
  }
  absl::Status Acquire() {
    auto db = store_->AcquireReader();
    if (!db.ok()) return db.status();
    db_ = std::move(*db);
    return absl::OkStatus();
  }
  Database& db() { return *db_; }

 private:
  AgentStore* store_;
  std::unique_ptr<Database> db_;
};

absl::StatusOr<std::unique_ptr<Database>> AgentStore::AcquireReader() {
  {
    absl::MutexLock lock(&pool_mu_);
    if (!readers_.empty()) {
      auto db = std::move(readers_.back());
      readers_.pop_back();
      return db;
    }
  }
  Database::Options options;
  options.read_only = true;
  return Database::Open(path_, options);
}

void AgentStore::ReleaseReader(std::unique_ptr<Database> db) {
  absl::MutexLock lock(&pool_mu_);
  if (readers_.size() < 16) readers_.push_back(std::move(db));
}

absl::StatusOr<std::vector<int64_t>> AgentStore::FindByToken(
    const accord::v1::SubjectToken& token) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT subject_id FROM subject_tokens WHERE token = ? AND kind = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, token.value()).Bind(2, static_cast<int64_t>(token.kind()));
  std::vector<int64_t> ids;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    ids.push_back(q->Int(0));
  }
  return ids;
}

absl::StatusOr<SubjectView> AgentStore::LoadSubject(int64_t id,
                                                    bool with_records) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare("SELECT body FROM subjects WHERE id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, id);
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow)
    return absl::NotFoundError("subject not found");
  SubjectView view;
  view.id = id;
  auto subject = ParseBody<accord::v1::Subject>(q->Blob(0), "subject");
  if (!subject.ok()) return subject.status();
  view.subject = std::move(*subject);
  if (with_records) {
    auto rq = r.db().Prepare(
        "SELECT body FROM records WHERE subject_id = ? ORDER BY id");
    if (!rq.ok()) return rq.status();
    rq->Bind(1, id);
    while (true) {
      auto rs = rq->Next();
      if (!rs.ok()) return rs.status();
      if (*rs == Statement::Step::kDone) break;
      auto rec = ParseBody<accord::v1::Record>(rq->Blob(0), "record");
      if (!rec.ok()) return rec.status();
      view.records.push_back(std::move(*rec));
    }
  }
  return view;
}

absl::StatusOr<std::vector<accord::v1::ConsentRecord>> AgentStore::ConsentsOf(
    int64_t subject_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT body FROM consents WHERE subject_id = ? ORDER BY rowid");
  if (!q.ok()) return q.status();
  q->Bind(1, subject_id);
  std::vector<accord::v1::ConsentRecord> out;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    auto c = ParseBody<accord::v1::ConsentRecord>(q->Blob(0), "consent");
    if (!c.ok()) return c.status();
    out.push_back(std::move(*c));
  }
  return out;
}

absl::StatusOr<std::vector<accord::v1::ConsentRecord>> AgentStore::Consents(
    const std::string& subject_local_id) {
  int64_t id = 0;
  {
    Reader r(this);
    if (auto s = r.Acquire(); !s.ok()) return s;
    auto q = r.db().Prepare("SELECT id FROM subjects WHERE local_id = ?");
    if (!q.ok()) return q.status();
    q->Bind(1, subject_local_id);
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step != Statement::Step::kRow) {
      return absl::NotFoundError(
          absl::StrCat("no subject with local_id '", subject_local_id, "'"));
    }
    id = q->Int(0);
  }
  return ConsentsOf(id);
}

absl::StatusOr<std::vector<accord::v1::Engagement>> AgentStore::EngagementsOf(
    int64_t subject_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT body FROM engagements WHERE subject_id = ? ORDER BY started_at");
  if (!q.ok()) return q.status();
  q->Bind(1, subject_id);
  std::vector<accord::v1::Engagement> out;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    auto e = ParseBody<accord::v1::Engagement>(q->Blob(0), "engagement");
    if (!e.ok()) return e.status();
    out.push_back(std::move(*e));
  }
  return out;
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>> AgentStore::TokensOf(
    const std::string& local_id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT t.token, t.kind FROM subject_tokens t JOIN subjects s ON s.id = "
      "t.subject_id "
      "WHERE s.local_id = ? ORDER BY t.kind");
  if (!q.ok()) return q.status();
  q->Bind(1, local_id);
  std::vector<accord::v1::SubjectToken> out;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    accord::v1::SubjectToken t;
    t.set_value(std::string(q->Text(0)));
    t.set_kind(static_cast<accord::v1::TokenKind>(q->Int(1)));
    out.push_back(std::move(t));
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no subject with local_id '", local_id, "'"));
  }
  return out;
}

absl::StatusOr<int64_t> AgentStore::SubjectCount() {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare("SELECT count(*) FROM subjects");
  if (!q.ok()) return q.status();
  auto step = q->Next();
  if (!step.ok()) return step.status();
  return q->Int(0);
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
    Database& db = w.db_;
    auto q = db.Prepare("SELECT history FROM referrals WHERE id = ?");
    if (!q.ok()) return q.status();
    q->Bind(1, referral.id());
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kRow) {
      if (q->Int(0) >= referral.history_size()) return absl::OkStatus();
      auto upd = db.Prepare(
          "UPDATE referrals SET state = ?, history = ?, updated_at = ?, "
          "body = ? WHERE id = ?");
      if (!upd.ok()) return upd.status();
      upd->Bind(1, static_cast<int64_t>(referral.state()))
          .Bind(2, static_cast<int64_t>(referral.history_size()))
          .Bind(3, Micros(absl::Now()))
          .BindBlob(4, referral.SerializeAsString())
          .Bind(5, referral.id());
      changed = true;
      return upd->Run();
    }
    if (insert_box == accord::v1::REFERRAL_BOX_UNSPECIFIED)
      return absl::OkStatus();
    auto ins = db.Prepare(
        "INSERT INTO referrals(id, box, state, history, idempotency_key, "
        "updated_at, body) VALUES(?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, referral.id())
        .Bind(2, static_cast<int64_t>(insert_box))
        .Bind(3, static_cast<int64_t>(referral.state()))
        .Bind(4, static_cast<int64_t>(referral.history_size()));
    if (referral.idempotency_key().empty() ||
        insert_box != accord::v1::REFERRAL_BOX_OUTBOX) {
      ins->BindNull(5);
    } else {
      ins->Bind(5, referral.idempotency_key());
    }
    ins->Bind(6, Micros(absl::Now())).BindBlob(7, referral.SerializeAsString());
    changed = true;
    return ins->Run();
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindReferral(
    const std::string& id) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare("SELECT seq, box, body FROM referrals WHERE id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, id);
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) return std::optional<StoredReferral>();
  auto out = ReadStoredReferral(*q);
  if (!out.ok()) return out.status();
  return std::optional<StoredReferral>(std::move(*out));
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindOutboxByKey(
    const std::string& idempotency_key) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT seq, box, body FROM referrals WHERE idempotency_key = ? AND "
      "box = 2");
  if (!q.ok()) return q.status();
  q->Bind(1, idempotency_key);
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) return std::optional<StoredReferral>();
  auto out = ReadStoredReferral(*q);
  if (!out.ok()) return out.status();
  return std::optional<StoredReferral>(std::move(*out));
}

absl::StatusOr<std::vector<StoredReferral>> AgentStore::ListReferrals(
    accord::v1::ReferralBox box, accord::v1::ReferralState state,
    int64_t after_seq, int limit) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.db().Prepare(
      "SELECT seq, box, body FROM referrals WHERE seq > ? "
      "AND (? = 0 OR box = ?) AND (? = 0 OR state = ?) ORDER BY seq LIMIT ?");
  if (!q.ok()) return q.status();
  q->Bind(1, after_seq)
      .Bind(2, static_cast<int64_t>(box))
      .Bind(3, static_cast<int64_t>(box))
      .Bind(4, static_cast<int64_t>(state))
      .Bind(5, static_cast<int64_t>(state))
      .Bind(6, static_cast<int64_t>(limit));
  std::vector<StoredReferral> out;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    auto one = ReadStoredReferral(*q);
    if (!one.ok()) return one.status();
    out.push_back(std::move(*one));
  }
  return out;
}

}  // namespace accord::agent
