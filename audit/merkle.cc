#include "audit/merkle.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <string>

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"

namespace accord::audit {
namespace {

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// The hash of leaves [begin, end) from complete-subtree hashes. In the RFC
// 6962 decomposition every perfect range is aligned, so this is one lookup
// per set bit of (end - begin).
absl::StatusOr<Hash> RangeHash(SubtreeHashes& store, uint64_t begin,
                               uint64_t end) {
  const uint64_t n = end - begin;
  if (IsPowerOfTwo(n) && begin % n == 0) {
    return store.Get(absl::countr_zero(n), begin / n);
  }
  if (n < 2) return absl::InternalError("merkle: empty range");
  const uint64_t k = SplitPoint(n);
  auto left = RangeHash(store, begin, begin + k);
  if (!left.ok()) return left.status();
  auto right = RangeHash(store, begin + k, end);
  if (!right.ok()) return right.status();
  return NodeHash(*left, *right);
}

absl::Status Path(SubtreeHashes& store, uint64_t m, uint64_t begin,
                  uint64_t end, std::vector<Hash>* out) {
  const uint64_t n = end - begin;
  if (n <= 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Hash> sibling;
  if (m < k) {
    if (auto s = Path(store, m, begin, begin + k, out); !s.ok()) return s;
    sibling = RangeHash(store, begin + k, end);
  } else {
    if (auto s = Path(store, m - k, begin + k, end, out); !s.ok()) return s;
    sibling = RangeHash(store, begin, begin + k);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(*sibling);
  return absl::OkStatus();
}

absl::Status SubProof(SubtreeHashes& store, uint64_t m, uint64_t begin,
                      uint64_t end, bool complete, std::vector<Hash>* out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (complete) return absl::OkStatus();
    auto h = RangeHash(store, begin, end);
    if (!h.ok()) return h.status();
    out->push_back(*h);
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Hash> sibling;
  if (m <= k) {
    if (auto s = SubProof(store, m, begin, begin + k, complete, out); !s.ok())
      return s;
    sibling = RangeHash(store, begin + k, end);
  } else {
    if (auto s = SubProof(store, m - k, begin + k, end, false, out); !s.ok())
      return s;
    sibling = RangeHash(store, begin, begin + k);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(*sibling);
  return absl::OkStatus();
}

}  // namespace

namespace {
// SHA-256 through a digest fetched once and a context per thread: the
// one-shot SHA256() looks the algorithm up (under a lock) on every call,
// which cost more than hashing a leaf.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct DigestContext {
  DigestContext() : ctx(EVP_MD_CTX_new()) {}
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
  EVP_MD_CTX* ctx;
};

Hash Sha256Of(uint8_t prefix, const void* a, size_t a_len, const void* b,
              size_t b_len) {
  thread_local DigestContext d;
  Hash out;
  const EVP_MD* md = Sha256Md();
  if (md == nullptr || d.ctx == nullptr ||
      EVP_DigestInit_ex2(d.ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(d.ctx, &prefix, 1) != 1 ||
      (a_len > 0 && EVP_DigestUpdate(d.ctx, a, a_len) != 1) ||
      (b_len > 0 && EVP_DigestUpdate(d.ctx, b, b_len) != 1) ||
      EVP_DigestFinal_ex(d.ctx, out.data(), nullptr) != 1) {
    // Only without a working libcrypto: fall back to the one-shot call.
    std::string buf(1, static_cast<char>(prefix));
    buf.append(static_cast<const char*>(a), a_len);
    buf.append(static_cast<const char*>(b), b_len);
    SHA256(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(),
           out.data());
  }
  return out;
}
}  // namespace

Hash LeafHash(absl::string_view leaf) {
  return Sha256Of(0x00, leaf.data(), leaf.size(), nullptr, 0);
}

Hash NodeHash(const Hash& left, const Hash& right) {
  return Sha256Of(0x01, left.data(), left.size(), right.data(), right.size());
}

Hash EmptyRoot() {
  Hash out;
  SHA256(nullptr, 0, out.data());
  return out;
}

absl::string_view AsBytes(const Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes) {
  if (bytes.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash must be 32 bytes, got ", bytes.size()));
  }
  Hash h;
  std::memcpy(h.data(), bytes.data(), 32);
  return h;
}

uint64_t SplitPoint(uint64_t n) {
  // Largest power of two strictly below n.
  return uint64_t{1} << (63 - absl::countl_zero(n - 1));
}

absl::StatusOr<CompactRange> CompactRange::FromNodes(uint64_t size,
                                                     std::vector<Hash> nodes) {
  if (nodes.size() != static_cast<size_t>(absl::popcount(size))) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact range of size ", size, " needs ",
                     absl::popcount(size), " nodes, got ", nodes.size()));
  }
  CompactRange r;
  r.size_ = size;
  r.nodes_ = std::move(nodes);
  return r;
}

absl::StatusOr<CompactRange> CompactRange::Load(uint64_t size,
                                                SubtreeHashes& store) {
  std::vector<Hash> nodes;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    if (!((size >> level) & 1)) continue;
    auto h = store.Get(level, begin >> level);
    if (!h.ok()) return h.status();
    nodes.push_back(*h);
    begin += uint64_t{1} << level;
  }
  return FromNodes(size, std::move(nodes));
}

void CompactRange::Append(const Hash& leaf_hash, const CompletedFn& completed) {
  if (completed) completed(0, size_, leaf_hash);
  Hash cur = leaf_hash;
  int level = 0;
  uint64_t index = size_;
  while ((size_ >> level) & 1) {
    cur = NodeHash(nodes_.back(), cur);
    nodes_.pop_back();
    ++level;
    index >>= 1;
    if (completed) completed(level, index, cur);
  }
  nodes_.push_back(cur);
  ++size_;
}

Hash CompactRange::Root() const {
  if (nodes_.empty()) return EmptyRoot();
  Hash r = nodes_.back();
  for (size_t i = nodes_.size() - 1; i-- > 0;) r = NodeHash(nodes_[i], r);
  return r;
}

Hash RootOfLeafHashes(absl::Span<const Hash> leaf_hashes) {
  if (leaf_hashes.empty()) return EmptyRoot();
  if (leaf_hashes.size() == 1) return leaf_hashes[0];
  const uint64_t k = SplitPoint(leaf_hashes.size());
  return NodeHash(RootOfLeafHashes(leaf_hashes.subspan(0, k)),
                  RootOfLeafHashes(leaf_hashes.subspan(k)));
}

absl::StatusOr<std::vector<Hash>> MakeInclusionProof(SubtreeHashes& store,
                                                     uint64_t leaf_index,
                                                     uint64_t tree_size) {
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf_index ", leaf_index, " is not in a tree of size ", tree_size));
  }
  std::vector<Hash> out;
  if (auto s = Path(store, leaf_index, 0, tree_size, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Hash>> MakeConsistencyProof(SubtreeHashes& store,
                                                       uint64_t first_size,
                                                       uint64_t second_size) {
  if (first_size > second_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("first_size ", first_size, " is larger than second_size ",
                     second_size));
  }
  std::vector<Hash> out;
  if (first_size == 0 || first_size == second_size) return out;
  if (auto s = SubProof(store, first_size, 0, second_size, true, &out); !s.ok())
    return s;
  return out;
}

absl::StatusOr<Hash> RootFromStore(SubtreeHashes& store, uint64_t tree_size) {
  if (tree_size == 0) return EmptyRoot();
  return RangeHash(store, 0, tree_size);
}

absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t leaf_index,
                             uint64_t tree_size, absl::Span<const Hash> path,
                             const Hash& root) {
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof: leaf_index ", leaf_index,
                     " is not below tree_size ", tree_size));
  }
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : path) {
    if (sn == 0) {
      return absl::InvalidArgumentError("inclusion proof: path is too long");
    }
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return absl::InvalidArgumentError("inclusion proof: path is too short");
  if (r != root) {
    return absl::DataLossError(
        "inclusion proof: computed root does not match the tree head's root");
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t first_size, uint64_t second_size,
                               const Hash& first_root, const Hash& second_root,
                               absl::Span<const Hash> path) {
  if (first_size > second_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof: first_size ", first_size,
                     " exceeds second_size ", second_size));
  }
  if (first_size == 0) {
    if (!path.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof from size 0 must be empty");
    }
    return absl::OkStatus();
  }
  if (first_size == second_size) {
    if (!path.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof between equal sizes must be empty");
    }
    if (first_root != second_root) {
      return absl::DataLossError(
          "consistency proof: roots differ for the same tree size");
    }
    return absl::OkStatus();
  }
  if (path.empty())
    return absl::InvalidArgumentError("consistency proof is empty");
  size_t i = 0;
  Hash fr, sr;
  if (IsPowerOfTwo(first_size)) {
    fr = sr = first_root;
  } else {
    fr = sr = path[0];
    i = 1;
  }
  uint64_t fn = first_size - 1;
  uint64_t sn = second_size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0)
      return absl::InvalidArgumentError("consistency proof: path is too long");
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return absl::InvalidArgumentError("consistency proof: path is too short");
  if (fr != first_root) {
    return absl::DataLossError(
        "consistency proof: does not reproduce the first root");
  }
  if (sr != second_root) {
    return absl::DataLossError(
        "consistency proof: does not reproduce the second root");
  }
  return absl::OkStatus();
}

}  // namespace accord::audit
