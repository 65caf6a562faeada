#include "audit/merkle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/hash_store.h"
#include "runtime/crypto.h"
#include "runtime/sqlite.h"

namespace accord::audit {
namespace {

using ::testing::HasSubstr;

Hash H(absl::string_view hex) {
  auto bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.ok());
  auto h = HashFromBytes(*bytes);
  EXPECT_TRUE(h.ok());
  return *h;
}

// RFC 6962 section 2.1, written out literally over leaf data.
Hash NaiveRoot(const std::vector<Hash>& lh, size_t b, size_t e) {
  const size_t n = e - b;
  if (n == 0) return EmptyRoot();
  if (n == 1) return lh[b];
  const size_t k = SplitPoint(n);
  return NodeHash(NaiveRoot(lh, b, b + k), NaiveRoot(lh, b + k, e));
}
std::vector<Hash> NaivePath(const std::vector<Hash>& lh, size_t m, size_t b,
                            size_t e) {
  const size_t n = e - b;
  if (n <= 1) return {};
  const size_t k = SplitPoint(n);
  std::vector<Hash> out;
  if (m < k) {
    out = NaivePath(lh, m, b, b + k);
    out.push_back(NaiveRoot(lh, b + k, e));
  } else {
    out = NaivePath(lh, m - k, b + k, e);
    out.push_back(NaiveRoot(lh, b, b + k));
  }
  return out;
}
std::vector<Hash> NaiveSubProof(const std::vector<Hash>& lh, size_t m, size_t b,
                                size_t e, bool complete) {
  const size_t n = e - b;
  if (m == n) {
    if (complete) return {};
    return {NaiveRoot(lh, b, e)};
  }
  const size_t k = SplitPoint(n);
  std::vector<Hash> out;
  if (m <= k) {
    out = NaiveSubProof(lh, m, b, b + k, complete);
    out.push_back(NaiveRoot(lh, b + k, e));
  } else {
    out = NaiveSubProof(lh, m - k, b + k, e, false);
    out.push_back(NaiveRoot(lh, b, b + k));
  }
  return out;
}

// Complete-subtree hashes computed from the leaves; fails on incomplete ones.
class MemoryHashes final : public SubtreeHashes {
 public:
  explicit MemoryHashes(std::vector<Hash> leaves)
      : leaves_(std::move(leaves)) {}
  absl::StatusOr<Hash> Get(int level, uint64_t index) override {
    const uint64_t b = index << level, e = (index + 1) << level;
    if (e > leaves_.size()) return absl::NotFoundError("incomplete subtree");
    ++lookups;
    return NaiveRoot(leaves_, b, e);
  }
  int lookups = 0;

 private:
  std::vector<Hash> leaves_;
};

// The leaves of the certificate-transparency project's Merkle tree tests.
std::vector<std::string> CtLeaves() {
  return {std::string(),
          std::string("\x00", 1),
          "\x10",
          "\x20\x21",
          "\x30\x31",
          "\x40\x41\x42\x43",
          "\x50\x51\x52\x53\x54\x55\x56\x57",
          "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
}

std::vector<Hash> CtLeafHashes() {
  std::vector<Hash> out;
  for (const auto& l : CtLeaves()) out.push_back(LeafHash(l));
  return out;
}

std::vector<Hash> LeafHashes(size_t n) {
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(LeafHash(absl::StrCat("leaf ", i)));
  return out;
}

TEST(MerkleTest, EmptyTreeRootIsHashOfEmptyString) {
  EXPECT_EQ(HexEncode(EmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(CompactRange().Root(), EmptyRoot());
}

TEST(MerkleTest, CertificateTransparencyRoots) {
  const char* kRoots[] = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  const auto leaves = CtLeafHashes();
  CompactRange range;
  for (size_t n = 1; n <= 8; ++n) {
    range.Append(leaves[n - 1]);
    EXPECT_EQ(HexEncode(range.Root()), kRoots[n - 1]) << n;
    EXPECT_EQ(
        HexEncode(RootOfLeafHashes(absl::MakeConstSpan(leaves).subspan(0, n))),
        kRoots[n - 1]);
    MemoryHashes store(std::vector<Hash>(leaves.begin(), leaves.begin() + n));
    EXPECT_EQ(HexEncode(*RootFromStore(store, n)), kRoots[n - 1]);
  }
}

TEST(MerkleTest, CertificateTransparencyInclusionProofs) {
  struct Vector {
    uint64_t index, size;
    std::vector<const char*> path;
  } vectors[] = {
      {0,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       3,
       {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {1,
       5,
       {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  const auto leaves = CtLeafHashes();
  for (const auto& v : vectors) {
    std::vector<Hash> subset(leaves.begin(), leaves.begin() + v.size);
    MemoryHashes store(subset);
    auto path = MakeInclusionProof(store, v.index, v.size);
    ASSERT_TRUE(path.ok());
    std::vector<Hash> want;
    for (const char* h : v.path) want.push_back(H(h));
    EXPECT_EQ(*path, want) << v.index << "/" << v.size;
    EXPECT_TRUE(VerifyInclusion(leaves[v.index], v.index, v.size, want,
                                RootOfLeafHashes(subset))
                    .ok());
  }
}

TEST(MerkleTest, CertificateTransparencyConsistencyProofs) {
  struct Vector {
    uint64_t first, second;
    std::vector<const char*> path;
  } vectors[] = {
      {1, 1, {}},
      {1,
       8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  const auto leaves = CtLeafHashes();
  MemoryHashes store(leaves);
  for (const auto& v : vectors) {
    auto path = MakeConsistencyProof(store, v.first, v.second);
    ASSERT_TRUE(path.ok());
    std::vector<Hash> want;
    for (const char* h : v.path) want.push_back(H(h));
    EXPECT_EQ(*path, want) << v.first << "/" << v.second;
    const Hash r1 =
        RootOfLeafHashes(absl::MakeConstSpan(leaves).subspan(0, v.first));
    const Hash r2 =
        RootOfLeafHashes(absl::MakeConstSpan(leaves).subspan(0, v.second));
    EXPECT_TRUE(VerifyConsistency(v.first, v.second, r1, r2, want).ok());
  }
}

TEST(MerkleTest, EveryInclusionProofMatchesTheRfcAndTamperingIsRejected) {
  const auto all = LeafHashes(40);
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<Hash> leaves(all.begin(), all.begin() + n);
    MemoryHashes store(leaves);
    const Hash root = NaiveRoot(leaves, 0, n);
    for (size_t i = 0; i < n; ++i) {
      auto path = MakeInclusionProof(store, i, n);
      ASSERT_TRUE(path.ok());
      ASSERT_EQ(*path, NaivePath(leaves, i, 0, n)) << i << "/" << n;
      ASSERT_TRUE(VerifyInclusion(leaves[i], i, n, *path, root).ok())
          << i << "/" << n;
      // Tampered: each hash altered, wrong leaf, wrong index, wrong size,
      // a hash dropped or added.
      for (size_t j = 0; j < path->size(); ++j) {
        auto bad = *path;
        bad[j][0] ^= 1;
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, bad, root).ok());
      }
      if (n > 1) {
        EXPECT_FALSE(
            VerifyInclusion(leaves[(i + 1) % n], i, n, *path, root).ok());
        EXPECT_FALSE(
            VerifyInclusion(leaves[i], (i + 1) % n, n, *path, root).ok());
      }
      // (The tree size itself is bound by the signed tree head, not the path.)
      EXPECT_FALSE(VerifyInclusion(leaves[i], i, i, *path, root).ok());
      if (!path->empty()) {
        auto shorter = *path;
        shorter.pop_back();
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, shorter, root).ok());
      }
      auto longer = *path;
      longer.push_back(root);
      EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, longer, root).ok());
    }
  }
}

TEST(MerkleTest, EveryConsistencyProofMatchesTheRfcAndTamperingIsRejected) {
  const auto all = LeafHashes(40);
  for (size_t n = 1; n <= 40; ++n) {
    std::vector<Hash> leaves(all.begin(), all.begin() + n);
    MemoryHashes store(leaves);
    const Hash r2 = NaiveRoot(leaves, 0, n);
    for (size_t m = 0; m <= n; ++m) {
      const Hash r1 = NaiveRoot(leaves, 0, m);
      auto path = MakeConsistencyProof(store, m, n);
      ASSERT_TRUE(path.ok());
      const auto want = (m == 0 || m == n)
                            ? std::vector<Hash>{}
                            : NaiveSubProof(leaves, m, 0, n, true);
      ASSERT_EQ(*path, want) << m << "/" << n;
      ASSERT_TRUE(VerifyConsistency(m, n, r1, r2, *path).ok()) << m << "/" << n;
      if (m == 0) continue;
      for (size_t j = 0; j < path->size(); ++j) {
        auto bad = *path;
        bad[j][31] ^= 0x80;
        EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, bad).ok())
            << m << "/" << n << "@" << j;
      }
      Hash wrong = r1;
      wrong[0] ^= 1;
      EXPECT_FALSE(VerifyConsistency(m, n, wrong, r2, *path).ok());
      EXPECT_FALSE(VerifyConsistency(m, n, r1, wrong, *path).ok());
      if (m < n) {
        auto shorter = *path;
        shorter.pop_back();
        EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, shorter).ok());
        auto longer = *path;
        longer.push_back(r2);
        EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, longer).ok());
      }
    }
  }
  EXPECT_THAT(VerifyConsistency(5, 3, EmptyRoot(), EmptyRoot(), {}).message(),
              HasSubstr("exceeds"));
}

TEST(MerkleTest, ProofsTakeLogarithmicLookups) {
  const auto leaves = LeafHashes(1000);
  MemoryHashes store(leaves);
  ASSERT_TRUE(MakeInclusionProof(store, 617, 1000).ok());
  EXPECT_LE(store.lookups, 20);
  EXPECT_THAT(MakeInclusionProof(store, 1000, 1000).status().message(),
              HasSubstr("not in a tree of size 1000"));
}

TEST(MerkleTest, CompactRangeReportsCompletedSubtreesAndReloads) {
  const auto leaves = LeafHashes(300);
  MemoryHashes store(leaves);
  CompactRange range;
  for (size_t n = 0; n < leaves.size(); ++n) {
    range.Append(leaves[n], [&](int level, uint64_t index, const Hash& h) {
      EXPECT_EQ(h, *store.Get(level, index)) << level << "," << index;
    });
    ASSERT_EQ(range.Root(), NaiveRoot(leaves, 0, n + 1));
    auto loaded = CompactRange::Load(n + 1, store);
    ASSERT_TRUE(loaded.ok());
    ASSERT_EQ(loaded->nodes(), range.nodes());
  }
  EXPECT_FALSE(CompactRange::FromNodes(3, {EmptyRoot()}).ok());
}

TEST(MerkleTest, TiledSqliteStoreServesEveryCompleteSubtree) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/tiles_", getpid(), ".db");
  std::remove(path.c_str());
  auto db = sqlite::Database::Open(path);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec(kMerkleTilesSchema).ok());
  auto writer = TileWriter::Create(**db);
  ASSERT_TRUE(writer.ok());
  const size_t n = 70000;  // three strata, partial tiles at each
  std::vector<Hash> leaves = LeafHashes(n);
  CompactRange range;
  for (size_t i = 0; i < n; ++i) {
    range.Append(leaves[i], [&](int l, uint64_t x, const Hash& h) {
      (*writer)->Add(l, x, h);
    });
    if (i % 997 == 0 || i == n - 1) {
      ASSERT_TRUE((*db)->Exec("BEGIN").ok());
      ASSERT_TRUE((*writer)->Flush().ok());
      ASSERT_TRUE((*db)->Exec("COMMIT").ok());
    }
  }
  auto reader = TileReader::Create(**db);
  ASSERT_TRUE(reader.ok());
  MemoryHashes memory(leaves);
  for (int level = 0; level <= 16; ++level) {
    for (uint64_t index = 0; (index + 1) << level <= n;
         index += 1 + (index * 7919) % 101) {
      ASSERT_EQ(*(*reader)->Get(level, index), *memory.Get(level, index))
          << level << "," << index;
    }
  }
  EXPECT_EQ((*reader)->Get(0, n).status().code(), absl::StatusCode::kNotFound);
  for (uint64_t i :
       {uint64_t{0}, uint64_t{255}, uint64_t{256}, uint64_t{65535}, n - 1}) {
    for (uint64_t size : {i + 1, n - 3, n}) {
      if (i >= size) continue;
      (*reader)->ClearCache();
      auto p = MakeInclusionProof(**reader, i, size);
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(*p, NaivePath(leaves, i, 0, size));
    }
  }
  auto c = MakeConsistencyProof(**reader, 12345, n);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, NaiveSubProof(leaves, 12345, 0, n, true));
  auto loaded = CompactRange::Load(n, **reader);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->Root(), range.Root());
  db->reset();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace accord::audit
