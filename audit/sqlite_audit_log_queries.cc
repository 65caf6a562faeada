// Reading the SQLite audit log: single entries, paged searches (through the
// key index and its in-memory tail), subject access and the review queue.
#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit::sqlite_log {

namespace {

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

}  // namespace

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

}  // namespace accord::audit::sqlite_log
