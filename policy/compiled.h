// Internal to policy/: the compiled form of agreements and rules that a
// PolicySet indexes. Immutable once built; thread-safe to read.
#ifndef ACCORD_POLICY_COMPILED_H_
#define ACCORD_POLICY_COMPILED_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/policy.pb.h"
#include "policy/policy.h"

namespace accord::policy {

// At most this many purposes (a rule's purposes are a 64-bit set).
constexpr int kMaxPurposes = 64;

struct CompiledAgreement {
  accord::v1::Agreement proto;
  std::string file;
  std::string where;  // file:line:col of the agreement's id
  absl::Time valid_from;
  absl::Time valid_until;
  bool has_review_by = false;
  absl::Time review_by;

  bool InForce(absl::Time t) const {
    return valid_from <= t && t < valid_until;
  }
};

struct CompiledRule {
  const CompiledAgreement* agreement = nullptr;
  const accord::v1::Rule* proto = nullptr;  // inside agreement->proto
  std::string where;                        // file:line:col of the rule
  accord::v1::Action action = accord::v1::ACTION_UNSPECIFIED;
  uint64_t purposes = 0;             // bit per interned purpose
  std::vector<uint32_t> requesters;  // interned org indices, kinds expanded
  std::vector<uint32_t> holders;
  ItemSet releases;  // items released (DROP excluded)
  std::array<accord::v1::Transform, kItemCount> transforms{};
  bool consent_required = false;
  bool involvement_only = false;
  bool has_clause = false;
  uint32_t accepted_reasons = 0;  // bit per ConsentNotSoughtReason
  int order = 0;                  // rank by (agreement id, rule id)

  const std::string& id() const { return proto->id(); }
};

struct PolicyData {
  accord::v1::Partnership partnership;
  std::vector<std::string> org_ids;
  std::vector<accord::v1::OrgKind> org_kinds;
  absl::flat_hash_map<std::string, uint32_t> org_index;
  std::vector<std::string> purposes;
  absl::flat_hash_map<std::string, uint32_t> purpose_index;

  std::vector<CompiledAgreement> agreements;  // sorted by id
  std::vector<CompiledRule> rules;  // sorted by (agreement id, rule id)

  // (requester, holder, action) -> candidate rules, in rule order.
  absl::flat_hash_map<uint64_t, std::vector<const CompiledRule*>>
      by_parties_action;
  // (requester, holder) pairs some rule covers, for any action.
  absl::flat_hash_set<uint64_t> pairs;
  // (requester, action) -> (holder, rule), for fan-out.
  absl::flat_hash_map<uint64_t,
                      std::vector<std::pair<uint32_t, const CompiledRule*>>>
      by_requester_action;

  // Warnings found while compiling (rules that can never match).
  std::vector<std::string> compile_warnings;

  int OrgOf(absl::string_view id) const {
    auto it = org_index.find(id);
    return it == org_index.end() ? -1 : static_cast<int>(it->second);
  }
  int PurposeOf(absl::string_view id) const {
    auto it = purpose_index.find(id);
    return it == purpose_index.end() ? -1 : static_cast<int>(it->second);
  }
};

inline uint64_t PartiesActionKey(uint32_t requester, uint32_t holder,
                                 int action) {
  return (uint64_t{requester} << 32) | (uint64_t{holder} << 4) |
         static_cast<uint64_t>(action);
}
inline uint64_t PairKey(uint32_t requester, uint32_t holder) {
  return (uint64_t{requester} << 32) | holder;
}
inline uint64_t RequesterActionKey(uint32_t requester, int action) {
  return (uint64_t{requester} << 4) | static_cast<uint64_t>(action);
}

// Short forms for messages: "ACTION_QUERY" -> "QUERY" etc.
std::string ShortEnumName(const std::string& full, absl::string_view prefix);
std::string TimeText(absl::Time t);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_COMPILED_H_
