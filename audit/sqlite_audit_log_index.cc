// The SQLite audit log's user and subject-token index: key rows kept in
// memory until written to entry_keys in bulk, and the committed tail that
// searches read until then.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit::sqlite_log {

KeyTerm SubjectTerm(const accord::v1::SubjectToken& t) {
  if (t.kind() == accord::v1::TOKEN_KIND_UNSPECIFIED)
    return {t.value(), 1, INT64_MAX};
  return {t.value(), SubjectTag(t.kind()), SubjectTag(t.kind())};
}

// The key rows an entry contributes (what entry_keys holds for it).
void KeyRowsOf(uint64_t seq, const AuditEntry& e, std::vector<KeyRow>* out) {
  if (!e.actor().user_id().empty())
    out->push_back({seq, kUserTag, e.actor().user_id()});
  for (const auto& t : e.subjects())
    out->push_back({seq, SubjectTag(t.kind()), t.value()});
}

void SqliteAuditLog::PublishTail(size_t first_row, bool index_written) {
  absl::MutexLock l(&tail_mu_);
  if (index_written) {
    tail_.clear();
    tail_mark_ = range_.size();
    return;
  }
  tail_mark_ = indexed_upto_;
  for (size_t i = first_row; i < unindexed_.size(); ++i) {
    const KeyRow& r = unindexed_[i];
    tail_[r.key].push_back({r.tag, r.seq});
  }
}

absl::Status SqliteAuditLog::WriteKeyIndex() {
  std::sort(unindexed_.begin(), unindexed_.end(),
            [](const KeyRow& a, const KeyRow& b) {
              const uint64_t ea = a.seq >> kEpochBits, eb = b.seq >> kEpochBits;
              if (ea != eb) return ea < eb;
              if (int c = a.key.compare(b.key); c != 0) return c < 0;
              if (a.tag != b.tag) return a.tag < b.tag;
              return a.seq < b.seq;
            });
  Statement& ins = *insert_key_;
  for (const KeyRow& r : unindexed_) {
    ins.Bind(1, static_cast<int64_t>(r.seq >> kEpochBits))
        .Bind(2, r.key)
        .Bind(3, r.tag)
        .Bind(4, static_cast<int64_t>(r.seq));
    if (auto s = ins.Run(); !s.ok()) return s;
  }
  set_indexed_upto_->Bind(1, static_cast<int64_t>(range_.size()));
  return set_indexed_upto_->Run();
}

absl::Status SqliteAuditLog::LoadUnindexed() {
  auto mark = wdb_->Prepare("SELECT indexed_upto FROM index_state");
  if (!mark.ok()) return mark.status();
  auto step = mark->Next();
  if (!step.ok()) return step.status();
  if (*step != Step::kRow)
    return absl::DataLossError(
        absl::StrCat(options_.db_path, ": index_state is empty"));
  indexed_upto_ = static_cast<uint64_t>(mark->Int(0));
  auto rows = wdb_->Prepare(
      "SELECT seq, leaf FROM entries WHERE seq >= ? ORDER BY seq");
  if (!rows.ok()) return rows.status();
  rows->Bind(1, static_cast<int64_t>(indexed_upto_));
  while (true) {
    auto next = rows->Next();
    if (!next.ok()) return next.status();
    if (*next == Step::kDone) {
      PublishTail(0, false);
      return absl::OkStatus();
    }
    auto e = DecodeLeaf(rows->Blob(1));
    if (!e.ok()) {
      return absl::DataLossError(absl::StrCat(options_.db_path,
                                              ": audit entry ", rows->Int(0),
                                              ": ", e.status().message()));
    }
    KeyRowsOf(static_cast<uint64_t>(rows->Int(0)), *e, &unindexed_);
  }
}

}  // namespace accord::audit::sqlite_log
