// The agent store's reads for statistics runs: engagements by start, and the
// tokens and dates of birth of the people counted. Each is one pass over its
// table, so a run over the whole store costs a few scans, not a query per
// person.
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

absl::StatusOr<absl::flat_hash_map<int64_t, std::vector<std::string>>>
AgentStore::Snapshot::TokensOfEach(
    const absl::flat_hash_set<int64_t>& subjects) {
  absl::flat_hash_map<int64_t, std::vector<std::pair<int64_t, std::string>>>
      found;
  auto q = conn_->Prepare("SELECT subject_id, kind, token FROM subject_tokens");
  if (!q.ok()) return q.status();
  auto s = EachRow(**q, [&] {
    const int64_t subject = (*q)->Int(0);
    if (subjects.contains(subject)) {
      found[subject].emplace_back((*q)->Int(1), std::string((*q)->Blob(2)));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::flat_hash_map<int64_t, std::vector<std::string>> out;
  out.reserve(found.size());
  for (auto& [subject, tokens] : found) {
    std::sort(tokens.begin(), tokens.end());
    auto& list = out[subject];
    for (auto& [kind, bytes] : tokens) list.push_back(std::move(bytes));
  }
  return out;
}

absl::StatusOr<absl::flat_hash_map<int64_t, std::string>>
AgentStore::Snapshot::DatesOfBirth(const absl::flat_hash_set<int64_t>& subjects,
                                   std::vector<SkippedRow>* skipped) {
  absl::flat_hash_map<int64_t, std::string> out;
  if (subjects.empty()) return out;
  auto q = conn_->Prepare("SELECT id, body FROM subjects");
  if (!q.ok()) return q.status();
  auto s = EachRow(**q, [&]() -> absl::Status {
    const int64_t id = (*q)->Int(0);
    if (!subjects.contains(id)) return absl::OkStatus();
    auto subject = ParseBody<accord::v1::Subject>((*q)->Blob(1), "subject");
    if (!subject.ok()) {
      Skip("subjects", id, subject.status(), accord::v1::DATA_CATEGORY_IDENTITY,
           skipped);
      return absl::OkStatus();
    }
    if (auto it = subject->fields().find("date_of_birth");
        it != subject->fields().end() && !it->second.empty()) {
      out[id] = it->second;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace accord::agent
