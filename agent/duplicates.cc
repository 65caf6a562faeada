#include "agent/duplicates.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace accord::agent {
namespace {

// The value of the token of `kind` among `tokens`, if any.
std::optional<std::string> TokenOf(
    const std::vector<accord::v1::SubjectToken>& tokens,
    accord::v1::TokenKind kind) {
  for (const auto& t : tokens) {
    if (t.kind() == kind) return t.value();
  }
  return std::nullopt;
}

const char* IdentifierName(accord::v1::TokenKind kind) {
  return kind == accord::v1::TOKEN_KIND_NHS_NUMBER ? "NHS number"
                                                   : "name and date of birth";
}

}  // namespace

absl::StatusOr<std::vector<Duplicate>> FindDuplicates(
    AgentStore::Writer& w, const accord::v1::Subject& subject,
    const std::vector<accord::v1::SubjectToken>& tokens) {
  const auto own_nhs = TokenOf(tokens, accord::v1::TOKEN_KIND_NHS_NUMBER);
  std::map<int64_t, accord::v1::TokenKind> found;  // subject row -> kind
  for (const auto& t : tokens) {
    if (t.kind() != accord::v1::TOKEN_KIND_NHS_NUMBER &&
        t.kind() != accord::v1::TOKEN_KIND_NAME_DOB) {
      continue;
    }
    auto ids = w.SubjectsWithToken(t, subject.local_id());
    if (!ids.ok()) return ids.status();
    for (int64_t id : *ids) {
      if (t.kind() == accord::v1::TOKEN_KIND_NAME_DOB) {
        if (found.count(id)) continue;  // already by NHS number
        // Same name and birthday, told apart by different NHS numbers.
        if (own_nhs) {
          auto theirs = w.TokensOfSubject(id);
          if (!theirs.ok()) return theirs.status();
          const auto their_nhs =
              TokenOf(*theirs, accord::v1::TOKEN_KIND_NHS_NUMBER);
          if (their_nhs && *their_nhs != *own_nhs) continue;
        }
      }
      found[id] = t.kind();
    }
  }
  std::vector<Duplicate> out;
  for (const auto& [id, kind] : found) {
    auto local_id = w.LocalIdOf(id);
    if (!local_id.ok()) return local_id.status();
    out.push_back({std::move(*local_id), kind});
  }
  std::sort(out.begin(), out.end(), [](const Duplicate& a, const Duplicate& b) {
    return a.local_id < b.local_id;
  });
  return out;
}

absl::Status DuplicateRefusal(absl::string_view where,
                              const std::vector<Duplicate>& duplicates,
                              absl::string_view remedy) {
  std::vector<std::string> held;
  for (const auto& d : duplicates) {
    held.push_back(
        absl::StrCat(IdentifierName(d.kind), " of subject '", d.local_id, "'"));
  }
  return absl::AlreadyExistsError(absl::StrCat(
      where, ": this person is already held here under another id (same ",
      absl::StrJoin(held, "; same "),
      "); one person must have one id, or queries about her are ambiguous: ",
      remedy));
}

}  // namespace accord::agent
