// RFC 6962 (section 2.1) Merkle tree hashing for the audit log.
//
// Leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right);
// the root of n leaves splits at the largest power of two smaller than n.
// Proofs are generated from a SubtreeHashes source that yields the hash of any
// complete (power-of-two sized and aligned) subtree by (level, index), so a
// proof costs O(log n) lookups however large the log; they are verified with
// the algorithms of RFC 9162 section 2.1.3.2 and 2.1.4.2.
//
// Free functions are thread-safe (pure). CompactRange is a value type: not
// thread-safe, guard it externally.
#ifndef ACCORD_AUDIT_MERKLE_H_
#define ACCORD_AUDIT_MERKLE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/crypto.h"

namespace accord::audit {

using Hash = Digest;  // 32-byte SHA-256

Hash LeafHash(absl::string_view leaf);
Hash NodeHash(const Hash& left, const Hash& right);
// The root of the empty tree: SHA-256 of the empty string.
Hash EmptyRoot();

absl::string_view AsBytes(const Hash& h);
// Fails unless `bytes` is exactly 32 bytes.
absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes);

// The largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n);

// The hash of a complete subtree: level L, index i covers leaves
// [i * 2^L, (i + 1) * 2^L). Level 0 nodes are leaf hashes.
class SubtreeHashes {
 public:
  virtual ~SubtreeHashes() = default;
  // NotFound when the subtree is not complete in the store.
  virtual absl::StatusOr<Hash> Get(int level, uint64_t index) = 0;
};

// The right edge of a tree: the roots of the perfect subtrees a tree of
// size() leaves decomposes into, largest (leftmost) first, one per set bit of
// size(). Appending is amortised O(1); memory is O(log n).
class CompactRange {
 public:
  CompactRange() = default;
  // Rebuilds the range of a tree of `size` leaves from its subtree roots
  // (one per set bit of size, leftmost first).
  static absl::StatusOr<CompactRange> FromNodes(uint64_t size,
                                                std::vector<Hash> nodes);
  // Reloads the range of a tree of `size` leaves from a hash store.
  static absl::StatusOr<CompactRange> Load(uint64_t size, SubtreeHashes& store);

  // Called for every subtree completed by an append: the leaf itself (level
  // 0) and each node merged above it.
  using CompletedFn =
      std::function<void(int level, uint64_t index, const Hash& hash)>;
  void Append(const Hash& leaf_hash, const CompletedFn& completed = nullptr);

  uint64_t size() const { return size_; }
  const std::vector<Hash>& nodes() const { return nodes_; }
  Hash Root() const;

 private:
  uint64_t size_ = 0;
  std::vector<Hash> nodes_;
};

// MTH over leaf hashes held in memory (for tools, tests and small trees).
Hash RootOfLeafHashes(absl::Span<const Hash> leaf_hashes);

// The audit path for `leaf_index` in the tree of `tree_size` leaves
// (RFC 6962 2.1.1), from complete-subtree hashes.
absl::StatusOr<std::vector<Hash>> MakeInclusionProof(SubtreeHashes& store,
                                                     uint64_t leaf_index,
                                                     uint64_t tree_size);
// The consistency proof between sizes first <= second (RFC 6962 2.1.2).
absl::StatusOr<std::vector<Hash>> MakeConsistencyProof(SubtreeHashes& store,
                                                       uint64_t first_size,
                                                       uint64_t second_size);
// The root of the first `tree_size` leaves from complete-subtree hashes.
absl::StatusOr<Hash> RootFromStore(SubtreeHashes& store, uint64_t tree_size);

// RFC 9162 2.1.3.2. InvalidArgument / DataLoss naming what failed.
[[nodiscard]] absl::Status VerifyInclusion(const Hash& leaf_hash,
                                           uint64_t leaf_index,
                                           uint64_t tree_size,
                                           absl::Span<const Hash> path,
                                           const Hash& root);
// RFC 9162 2.1.4.2. first_size == 0 is trivially consistent (empty path).
[[nodiscard]] absl::Status VerifyConsistency(uint64_t first_size,
                                             uint64_t second_size,
                                             const Hash& first_root,
                                             const Hash& second_root,
                                             absl::Span<const Hash> path);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_MERKLE_H_
