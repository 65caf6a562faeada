// The agent store's reads for statistics runs: engagements by start, and the
// dates of birth and token prefixes of the people counted. Each is one scan
// of its table (a run usually covers much of the store, where a scan beats
// a lookup per row), parsing only the rows it needs.
#include <algorithm>

#include "agent/store_internal.h"

namespace accord::agent {

using store_internal::EachRow;
using store_internal::Micros;
using store_internal::ParseBody;
using store_internal::Skip;

absl::Status AgentStore::Snapshot::EngagementsStarted(
    absl::Time from, absl::Time until,
    const std::function<void(int64_t, const accord::v1::Engagement&)>& fn,
    std::vector<SkippedRow>* skipped) {
  auto q = conn_->Prepare(
      "SELECT subject_id, body, id FROM engagements WHERE started_at >= ? AND "
      "started_at < ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, Micros(from)).Bind(2, Micros(until));
  accord::v1::Engagement e;
  return EachRow(**q, [&]() -> absl::Status {
    e.Clear();
    const absl::string_view blob = (*q)->Blob(1);
    if (!e.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      Skip("engagements", (*q)->Int(2),
           absl::DataLossError("a stored engagement does not parse"),
           accord::v1::DATA_CATEGORY_ENGAGEMENT, skipped);
      return absl::OkStatus();
    }
    fn((*q)->Int(0), e);
    return absl::OkStatus();
  });
}

absl::StatusOr<
    absl::flat_hash_map<int64_t, AgentStore::Snapshot::TokenPrefixes>>
AgentStore::Snapshot::TokenPrefixesOf(
    const absl::flat_hash_set<int64_t>& subjects) {
  absl::flat_hash_map<int64_t, TokenPrefixes> out;
  out.reserve(subjects.size());
  auto q = conn_->Prepare("SELECT subject_id, kind, token FROM subject_tokens");
  if (!q.ok()) return q.status();
  auto s = EachRow(**q, [&] {
    const int64_t subject = (*q)->Int(0);
    if (!subjects.contains(subject)) return absl::OkStatus();
    const absl::string_view token = (*q)->Blob(2);
    if (token.size() < 16) return absl::OkStatus();
    TokenPrefixes& p = out[subject];
    if (p.count == 3) return absl::OkStatus();
    // Keep kind order: insert before the first of a higher kind.
    const auto kind = static_cast<int8_t>((*q)->Int(1));
    int at = p.count;
    while (at > 0 && p.kinds[at - 1] > kind) {
      p.kinds[at] = p.kinds[at - 1];
      std::copy_n(p.bytes + 16 * (at - 1), 16, p.bytes + 16 * at);
      --at;
    }
    p.kinds[at] = kind;
    std::copy_n(token.data(), 16, p.bytes + 16 * at);
    ++p.count;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<absl::flat_hash_map<int64_t, std::string>>
AgentStore::Snapshot::DatesOfBirth(absl::Time from, absl::Time until,
                                   std::vector<SkippedRow>* skipped) {
  absl::flat_hash_map<int64_t, std::string> out;
  auto q = conn_->Prepare(
      "SELECT id, body FROM subjects WHERE id IN (SELECT subject_id FROM "
      "engagements WHERE started_at >= ? AND started_at < ?)");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, Micros(from)).Bind(2, Micros(until));
  accord::v1::Subject subject;
  auto s = EachRow(**q, [&]() -> absl::Status {
    subject.Clear();
    const absl::string_view blob = (*q)->Blob(1);
    if (!subject.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
      Skip("subjects", (*q)->Int(0),
           absl::DataLossError("a stored subject does not parse"),
           accord::v1::DATA_CATEGORY_IDENTITY, skipped);
      return absl::OkStatus();
    }
    if (auto it = subject.fields().find("date_of_birth");
        it != subject.fields().end() && !it->second.empty()) {
      out.emplace((*q)->Int(0), it->second);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace accord::agent
