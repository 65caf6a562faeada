// The agent store's reads: a snapshot's reads for disclosure, and the
// one-call reads the local API uses.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "agent/store.h"
#include "agent/store_internal.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::agent {

using store_internal::ConsentFromRow;
using store_internal::EachRow;
using store_internal::kConsentColumns;
using store_internal::kTokenBytes;
using store_internal::ParseBody;
using store_internal::Skip;
using store_internal::Statement;
using store_internal::TokenBytes;

namespace store_internal {

void Skip(absl::string_view table, int64_t row_id, const absl::Status& why,
          accord::v1::DataCategory category, std::vector<SkippedRow>* skipped) {
  std::fprintf(stderr,
               "accord-agent: store: %.*s row %lld left out of a read: %.*s; "
               "write it again through the local API or an import\n",
               static_cast<int>(table.size()), table.data(),
               static_cast<long long>(row_id),
               static_cast<int>(why.message().size()), why.message().data());
  if (skipped != nullptr)
    skipped->push_back({std::string(table), row_id, category});
}

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

}  // namespace store_internal

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
  auto q = conn_->Prepare("SELECT body, local_id FROM subjects WHERE id = ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, id);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow)
    return absl::NotFoundError("subject not found");
  SubjectView view;
  view.id = id;
  auto subject = ParseBody<accord::v1::Subject>((*q)->Blob(0), "subject");
  if (subject.ok()) {
    view.subject = std::move(*subject);
  } else {
    Skip("subjects", id, subject.status(),
         accord::v1::DATA_CATEGORY_UNSPECIFIED, &view.skipped);
    view.subject.set_local_id(std::string((*q)->Text(1)));
  }
  if (with_records) {
    auto rq = conn_->Prepare(
        "SELECT body, id, category FROM records WHERE subject_id = ? ORDER BY "
        "id");
    if (!rq.ok()) return rq.status();
    (*rq)->Bind(1, id);
    auto s = EachRow(**rq, [&]() -> absl::Status {
      auto rec = ParseBody<accord::v1::Record>((*rq)->Blob(0), "record");
      if (rec.ok()) {
        view.records.push_back(std::move(*rec));
      } else {
        Skip("records", (*rq)->Int(1), rec.status(),
             static_cast<accord::v1::DataCategory>((*rq)->Int(2)),
             &view.skipped);
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  return view;
}

absl::StatusOr<std::vector<accord::v1::ConsentRecord>>
AgentStore::Snapshot::ConsentsOf(int64_t subject_id,
                                 std::vector<SkippedRow>* skipped) {
  static const std::string* const kSql = new std::string(absl::StrCat(
      "SELECT ", kConsentColumns,
      ", c.rowid FROM consents c WHERE c.subject_id = ? ORDER BY c.rowid"));
  auto q = conn_->Prepare(kSql->c_str());
  if (!q.ok()) return q.status();
  (*q)->Bind(1, subject_id);
  std::vector<accord::v1::ConsentRecord> out;
  auto s = EachRow(**q, [&]() -> absl::Status {
    auto c = ConsentFromRow(**q, 0);
    if (c.ok()) {
      out.push_back(std::move(*c));
    } else {
      Skip("consents", (*q)->Int(3), c.status(),
           accord::v1::DATA_CATEGORY_UNSPECIFIED, skipped);
    }
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
AgentStore::Snapshot::EngagementsOf(int64_t subject_id,
                                    std::vector<SkippedRow>* skipped) {
  auto q = conn_->Prepare(
      "SELECT body, id FROM engagements WHERE subject_id = ? ORDER BY "
      "started_at");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, subject_id);
  std::vector<accord::v1::Engagement> out;
  auto s = EachRow(**q, [&]() -> absl::Status {
    auto e = ParseBody<accord::v1::Engagement>((*q)->Blob(0), "engagement");
    if (e.ok()) {
      out.push_back(std::move(*e));
    } else {
      Skip("engagements", (*q)->Int(1), e.status(),
           accord::v1::DATA_CATEGORY_UNSPECIFIED, skipped);
    }
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
  return ReadInteger("SELECT count(*) FROM subjects");
}

absl::StatusOr<int64_t> AgentStore::ReadInteger(const char* sql) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(sql);
  if (!q.ok()) return q.status();
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  return (*q)->Int(0);
}

}  // namespace accord::agent
