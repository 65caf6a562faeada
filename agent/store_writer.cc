// The agent store's writes (AgentStore::Writer): subjects and their tokens,
// records, consent history, engagements, savepoints.
#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/store.h"
#include "agent/store_internal.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::agent {

using store_internal::ConsentFromRow;
using store_internal::Database;
using store_internal::EachRow;
using store_internal::kConsentColumns;
using store_internal::kTokenBytes;
using store_internal::Micros;
using store_internal::ParseBody;
using store_internal::ReadsBack;
using store_internal::Statement;
using store_internal::TokenBytes;

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
  const int64_t id = (*q)->Int(0);
  Remember(local_id, id);
  auto subject = ParseBody<accord::v1::Subject>((*q)->Blob(1), "subject");
  (*q)->Reset();
  if (!subject.ok()) {
    // Held, but its fields do not read back: an upsert replaces them.
    store_internal::Skip("subjects", id, subject.status(),
                         accord::v1::DATA_CATEGORY_UNSPECIFIED, nullptr);
    accord::v1::Subject bare;
    bare.set_local_id(local_id);
    return bare;
  }
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
  if (auto s = ReadsBack<accord::v1::Subject>(body, "subject"); !s.ok())
    return s;
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
      deferred_by_value_[{d.bytes, d.kind}].push_back(deferred_tokens_.size());
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
  deferred_by_value_.clear();
  return absl::OkStatus();
}

absl::StatusOr<bool> AgentStore::Writer::UpsertRecord(
    const accord::v1::Record& record) {
  auto subject = SubjectId(record.subject_local_id());
  if (!subject.ok()) return subject.status();
  const std::string body = record.SerializeAsString();
  if (auto s = ReadsBack<accord::v1::Record>(body, "record"); !s.ok()) return s;
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
  const std::string body = consent.SerializeAsString();
  if (auto s = ReadsBack<accord::v1::ConsentRecord>(body, "consent"); !s.ok())
    return s;
  auto q =
      conn_.Prepare("INSERT INTO consents(id, subject_id, body) VALUES(?,?,?)");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, consent.id()).Bind(2, *subject).BindBlob(3, body);
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
      "SELECT ", kConsentColumns, ", c.rowid FROM consents c WHERE c.id = ?"));
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
  if (!c.ok()) {
    // Its terms do not read back. It is still held under this id, and can
    // still be withdrawn: withdrawal needs only the events.
    store_internal::Skip("consents", (*q)->Int(3), c.status(),
                         accord::v1::DATA_CATEGORY_UNSPECIFIED, nullptr);
    accord::v1::ConsentRecord bare;
    bare.set_id(consent_id);
    if (!(*q)->IsNull(1)) {
      *bare.mutable_withdrawn_at() =
          ToProtoTime(absl::FromUnixMicros((*q)->Int(1)));
    }
    c = std::move(bare);
  }
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
  const std::string body = engagement.SerializeAsString();
  if (auto s = ReadsBack<accord::v1::Engagement>(body, "engagement"); !s.ok())
    return s;
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
    (*upd)->BindBlob(1, body).Bind(2, id);
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
      .BindBlob(4, body);
  if (auto s = (*q)->Run(); !s.ok()) return s;
  return absl::StrCat("engagement-", conn_.db().LastInsertRowId());
}
// ---------------------------------------------------------------------------
// One person, one local id

absl::StatusOr<std::vector<int64_t>> AgentStore::Writer::SubjectsWithToken(
    const accord::v1::SubjectToken& token, const std::string& self) {
  std::vector<int64_t> ids;
  std::array<char, kTokenBytes> bytes;
  if (!TokenBytes(token.value(), bytes.data())) return ids;
  auto own = SubjectId(self);
  if (!own.ok() && own.status().code() != absl::StatusCode::kNotFound)
    return own.status();
  const int64_t self_id = own.ok() ? *own : 0;
  auto q = conn_.Prepare(
      "SELECT subject_id FROM subject_tokens WHERE token = ? AND kind = ?");
  if (!q.ok()) return q.status();
  const int64_t kind = static_cast<int64_t>(token.kind());
  (*q)->BindBlob(1, absl::string_view(bytes.data(), kTokenBytes)).Bind(2, kind);
  auto s = EachRow(**q, [&] {
    if ((*q)->Int(0) != self_id) ids.push_back((*q)->Int(0));
    return absl::OkStatus();
  });
  (*q)->Reset();
  if (!s.ok()) return s;
  if (auto it = deferred_by_value_.find({bytes, kind});
      it != deferred_by_value_.end()) {
    for (size_t i : it->second) {
      const int64_t id = deferred_tokens_[i].subject_id;
      if (id != 0 && id != self_id &&
          std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ids.push_back(id);
      }
    }
  }
  return ids;
}

absl::StatusOr<std::string> AgentStore::Writer::LocalIdOf(int64_t id) {
  auto q = conn_.Prepare("SELECT local_id FROM subjects WHERE id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow)
    return absl::NotFoundError(absl::StrCat("no subject row ", id));
  std::string local_id((*q)->Text(0));
  (*q)->Reset();
  return local_id;
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>>
AgentStore::Writer::TokensOfSubject(int64_t id) {
  std::vector<accord::v1::SubjectToken> out;
  auto add = [&out](absl::string_view bytes, int64_t kind) {
    accord::v1::SubjectToken t;
    t.set_value(HexEncode(bytes));
    t.set_kind(static_cast<accord::v1::TokenKind>(kind));
    out.push_back(std::move(t));
  };
  auto q = conn_.Prepare(
      "SELECT token, kind FROM subject_tokens WHERE subject_id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto s = EachRow(**q, [&] {
    add((*q)->Blob(0), (*q)->Int(1));
    return absl::OkStatus();
  });
  (*q)->Reset();
  if (!s.ok()) return s;
  if (auto it = deferred_of_subject_.find(id);
      it != deferred_of_subject_.end()) {
    for (size_t i = it->second;
         i < deferred_tokens_.size() && deferred_tokens_[i].subject_id == id;
         ++i) {
      add(absl::string_view(deferred_tokens_[i].bytes.data(), kTokenBytes),
          deferred_tokens_[i].kind);
    }
  }
  return out;
}

absl::StatusOr<AgentStore::Writer::MergeCounts>
AgentStore::Writer::MergeSubject(const std::string& from_local_id,
                                 const std::string& into_local_id) {
  if (defer_tokens_) {
    return absl::InternalError(
        "agent store: a merge cannot run with deferred token writes");
  }
  auto from = SubjectId(from_local_id);
  if (!from.ok()) return from.status();
  const int64_t from_id = *from;
  auto into = SubjectId(into_local_id);
  if (!into.ok()) return into.status();
  const int64_t into_id = *into;
  if (from_id == into_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject '", from_local_id, "' cannot merge into itself"));
  }
  MergeCounts counts;

  // Records, each read and rewritten with its new local id (a body that does
  // not read back moves as it is).
  {
    std::vector<std::pair<int64_t, std::string>> moved;
    auto q = conn_.Prepare("SELECT id, body FROM records WHERE subject_id = ?");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, from_id);
    auto s = EachRow(**q, [&] {
      moved.emplace_back((*q)->Int(0), std::string((*q)->Blob(1)));
      return absl::OkStatus();
    });
    (*q)->Reset();
    if (!s.ok()) return s;
    for (auto& [row, body] : moved) {
      auto record = ParseBody<accord::v1::Record>(body, "record");
      if (record.ok()) {
        record->set_subject_local_id(into_local_id);
        body = record->SerializeAsString();
      }
      auto upd = conn_.Prepare(
          "UPDATE records SET subject_id = ?, body = ? WHERE id = ?");
      if (!upd.ok()) return upd.status();
      (*upd)->Bind(1, into_id).BindBlob(2, body).Bind(3, row);
      if (auto r = (*upd)->Run(); !r.ok()) return r;
      ++counts.records;
    }
  }

  // Consents: only their link to the person; their terms never change
  // (the schema refuses any change of a consent's id or body).
  {
    auto upd = conn_.Prepare(
        "UPDATE consents SET subject_id = ? WHERE subject_id = ?");
    if (!upd.ok()) return upd.status();
    (*upd)->Bind(1, into_id).Bind(2, from_id);
    if (auto r = (*upd)->Run(); !r.ok()) return r;
    counts.consents = conn_.db().Changes();
  }

  // Engagements, unless the survivor has the same one.
  {
    struct Moved {
      int64_t row;
      std::string body;
      bool duplicate;
    };
    std::vector<Moved> moved;
    auto q = conn_.Prepare(
        "SELECT e.id, e.body, EXISTS(SELECT 1 FROM engagements s WHERE "
        "s.subject_id = ? AND s.service = e.service AND s.started_at = "
        "e.started_at) FROM engagements e WHERE e.subject_id = ?");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, into_id).Bind(2, from_id);
    auto s = EachRow(**q, [&] {
      moved.push_back(
          {(*q)->Int(0), std::string((*q)->Blob(1)), (*q)->Int(2) != 0});
      return absl::OkStatus();
    });
    (*q)->Reset();
    if (!s.ok()) return s;
    for (auto& m : moved) {
      if (m.duplicate) {
        auto del = conn_.Prepare("DELETE FROM engagements WHERE id = ?");
        if (!del.ok()) return del.status();
        (*del)->Bind(1, m.row);
        if (auto r = (*del)->Run(); !r.ok()) return r;
        continue;
      }
      auto e = ParseBody<accord::v1::Engagement>(m.body, "engagement");
      if (e.ok()) {
        e->set_subject_local_id(into_local_id);
        m.body = e->SerializeAsString();
      }
      auto upd = conn_.Prepare(
          "UPDATE engagements SET subject_id = ?, body = ? WHERE id = ?");
      if (!upd.ok()) return upd.status();
      (*upd)->Bind(1, into_id).BindBlob(2, m.body).Bind(3, m.row);
      if (auto r = (*upd)->Run(); !r.ok()) return r;
      ++counts.engagements;
    }
  }

  // The merged id goes, with its tokens (ON DELETE CASCADE); the foreign
  // keys refuse it should anything still refer to it.
  auto del = conn_.Prepare("DELETE FROM subjects WHERE id = ?");
  if (!del.ok()) return del.status();
  (*del)->Bind(1, from_id);
  if (auto r = (*del)->Run(); !r.ok()) return r;
  Remember(from_local_id, 0);
  auto log = conn_.Prepare(
      "INSERT INTO subject_merges(from_local_id, into_local_id, at, records, "
      "consents, engagements) VALUES(?,?,?,?,?,?)");
  if (!log.ok()) return log.status();
  (*log)
      ->Bind(1, from_local_id)
      .Bind(2, into_local_id)
      .Bind(3, Micros(absl::Now()))
      .Bind(4, counts.records)
      .Bind(5, counts.consents)
      .Bind(6, counts.engagements);
  if (auto r = (*log)->Run(); !r.ok()) return r;
  return counts;
}

}  // namespace accord::agent
