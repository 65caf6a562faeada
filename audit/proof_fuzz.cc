// libFuzzer target: Merkle proof verification with arbitrary indexes, sizes
// and paths (must never crash or accept a proof for the wrong root), and
// proof generation for a fuzzer-sized tree (must always verify).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/merkle.h"

namespace {
using accord::audit::Hash;

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8 && pos_ < n_; ++i) v = (v << 8) | d_[pos_++];
    return v;
  }
  Hash H() {
    Hash h{};
    for (size_t i = 0; i < 32 && pos_ < n_; ++i) h[i] = d_[pos_++];
    return h;
  }
  bool Done() const { return pos_ >= n_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

class MemoryHashes final : public accord::audit::SubtreeHashes {
 public:
  explicit MemoryHashes(const std::vector<Hash>& leaves) : leaves_(leaves) {}
  absl::StatusOr<Hash> Get(int level, uint64_t index) override {
    const uint64_t b = index << level, e = (index + 1) << level;
    if (level > 20 || e > leaves_.size())
      return absl::NotFoundError("incomplete");
    return accord::audit::RootOfLeafHashes(
        absl::MakeConstSpan(leaves_).subspan(b, e - b));
  }

 private:
  const std::vector<Hash>& leaves_;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const uint64_t a = r.U64(), b = r.U64();
  const Hash h1 = r.H(), h2 = r.H();
  std::vector<Hash> path;
  while (!r.Done() && path.size() < 70) path.push_back(r.H());
  (void)accord::audit::VerifyInclusion(h1, a, b, path, h2);
  (void)accord::audit::VerifyConsistency(a, b, h1, h2, path);

  // A real tree of n leaves: generated proofs verify; a flipped bit does not.
  const uint64_t n = 1 + a % 300;
  std::vector<Hash> leaves;
  for (uint64_t i = 0; i < n; ++i)
    leaves.push_back(accord::audit::LeafHash(absl::StrCat(i)));
  MemoryHashes store(leaves);
  const Hash root = accord::audit::RootOfLeafHashes(leaves);
  const uint64_t index = b % n;
  auto proof = accord::audit::MakeInclusionProof(store, index, n);
  if (!proof.ok() ||
      !accord::audit::VerifyInclusion(leaves[index], index, n, *proof, root)
           .ok()) {
    __builtin_trap();
  }
  const uint64_t m = b % (n + 1);
  auto cons = accord::audit::MakeConsistencyProof(store, m, n);
  const Hash first = accord::audit::RootOfLeafHashes(
      absl::MakeConstSpan(leaves).subspan(0, m));
  if (!cons.ok() ||
      !accord::audit::VerifyConsistency(m, n, first, root, *cons).ok()) {
    __builtin_trap();
  }
  if (!cons->empty()) {
    auto bad = *cons;
    bad[h1[0] % bad.size()][h1[1] % 32] ^=
        static_cast<uint8_t>(1 + h1[2] % 255);
    if (accord::audit::VerifyConsistency(m, n, first, root, bad).ok())
      __builtin_trap();
  }
  return 0;
}
