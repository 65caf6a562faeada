// Unique people across partners without the gateway learning who they are.
//
// For each statistics run the gateway picks a random run id. Every agent
// derives the run key K = HMAC-SHA256(linkage key, "accord-statistics-run\0"
// || run id), which the gateway cannot (it never holds the linkage key), and
// sends, for each person it counted, one group: the keyed values
// AES-256_K(first 16 bytes of the token), cut to 8 bytes, of each subject
// token she has. Equal tokens give equal values within the run; across runs
// the values change, and without K nobody can compute them from a token.
// The gateway joins groups that share a value (the same person known to two
// partners, perhaps by different identifiers at each) and counts the joined
// groups; then it discards them. docs/STATISTICS.md has the privacy argument.
//
// Wire form (HolderPeriodCounts.person_keys): for each person, one byte n
// (1-3) then n 8-byte values. A person with no token gets one random value,
// which matches nobody.
#ifndef ACCORD_STATS_PEOPLE_H_
#define ACCORD_STATS_PEOPLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "linkage/tokens.h"

namespace accord::stats {

inline constexpr size_t kPersonKeyBytes = 8;
inline constexpr size_t kMaxTokensPerPerson = 3;
// How much of a token the keyed value is computed from.
inline constexpr size_t kTokenPrefixBytes = 16;

// An agent's keyer for one run. Not thread-safe.
class RunKeyer {
 public:
  static absl::StatusOr<RunKeyer> Create(const linkage::LinkageKey& key,
                                         absl::string_view run_id);
  RunKeyer(RunKeyer&&) noexcept;
  RunKeyer& operator=(RunKeyer&&) noexcept;
  ~RunKeyer();

  // Appends one person's group for her tokens (each 32 raw bytes; at most
  // kMaxTokensPerPerson are used) to `out`.
  void AppendGroup(const std::vector<std::string>& tokens, std::string* out);
  // The same from the first kTokenPrefixBytes of each token, concatenated
  // (at most kMaxTokensPerPerson of them).
  void AppendPrefixGroup(absl::string_view prefixes, std::string* out);

 private:
  struct Cipher;
  explicit RunKeyer(std::unique_ptr<Cipher> c);
  std::unique_ptr<Cipher> cipher_;
};

// OK when `person_keys` is `people` well-formed groups.
absl::Status CheckPersonKeys(absl::string_view person_keys, uint64_t people);

// The gateway's count of distinct people over the groups of every holder.
class PeopleUnion {
 public:
  // Adds the groups of one holder's period (`people` of them). Refuses, and
  // adds nothing, when the bytes are not `people` well-formed groups.
  absl::Status Add(absl::string_view person_keys, uint64_t people);
  // Distinct people: groups joined wherever they share a value.
  uint64_t Count() const { return values_.size() - unions_; }

 private:
  uint32_t Find(uint32_t x);
  absl::flat_hash_map<uint64_t, uint32_t> values_;
  std::vector<uint32_t> parent_;
  uint64_t unions_ = 0;
};

}  // namespace accord::stats

#endif  // ACCORD_STATS_PEOPLE_H_
