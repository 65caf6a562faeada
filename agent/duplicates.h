// One person, one local id. Matching answers a query only when the
// strongest identifier given points at one person here; a second local id
// for the same woman (created by a typo in the partner's system, or by two
// teams registering her) would make every query about her ambiguous, and no
// requester could fix that. So an upsert (local API or import) whose strong
// identifiers already belong to another local id is refused, naming that id,
// unless the caller asks for the two to be merged.
//
// Strong identifiers: the NHS number; name and date of birth, unless both
// people have NHS numbers and they differ (two women of the same name and
// birthday are told apart by their NHS numbers). Date of birth and postcode
// is weak: people share it.
//
// Thread-compatible: runs inside one store write transaction.
#ifndef ACCORD_AGENT_DUPLICATES_H_
#define ACCORD_AGENT_DUPLICATES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accord/v1/records.pb.h"
#include "agent/store.h"

namespace accord::agent {

// Another local id holding one of a subject's strong identifiers.
struct Duplicate {
  std::string local_id;
  accord::v1::TokenKind kind;  // the strongest identifier they share
};

// The local ids, other than `subject`'s own, that `subject` with `tokens`
// (as PrepareSubject derived them) would duplicate, in local id order.
absl::StatusOr<std::vector<Duplicate>> FindDuplicates(
    AgentStore::Writer& w, const accord::v1::Subject& subject,
    const std::vector<accord::v1::SubjectToken>& tokens);

// AlreadyExists "<where>: her <identifier> already belongs to subject
// '<id>' held here; ... <remedy>".
absl::Status DuplicateRefusal(absl::string_view where,
                              const std::vector<Duplicate>& duplicates,
                              absl::string_view remedy);

}  // namespace accord::agent

#endif  // ACCORD_AGENT_DUPLICATES_H_
