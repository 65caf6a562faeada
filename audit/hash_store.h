// The audit log's Merkle subtree hashes in SQLite.
//
// Complete subtrees are kept by (level, index), packed into tiles: stratum s
// holds the hashes of the nodes at level 4*s, 16 consecutive nodes per row
// (table merkle_tiles(stratum, idx, hashes), a blob of up to 512 bytes). Any
// complete node at levels 4*s .. 4*s+3 is recomputed from at most 8 hashes of
// one tile, so a proof for a 10-million-entry log reads six small rows and
// hashes about 70 times, and the store holds 1.07 hashes per leaf in n/15
// rows instead of 2n rows of (level, index, hash).
//
// TileWriter and TileReader wrap statements of one sqlite::Database and, like
// it, are not thread-safe.
#ifndef ACCORD_AUDIT_HASH_STORE_H_
#define ACCORD_AUDIT_HASH_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "audit/merkle.h"
#include "runtime/sqlite.h"

namespace accord::audit {

inline constexpr int kTileHeight = 4;
inline constexpr uint64_t kTileWidth = uint64_t{1} << kTileHeight;

// CREATE TABLE statement for the tiles (part of the log's schema).
extern const char kMerkleTilesSchema[];

// Buffers completed subtrees (from CompactRange::Append) and writes the
// tiles they belong to. Flush within the caller's transaction.
class TileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TileWriter>> Create(
      sqlite::Database& db);

  // Keeps nodes whose level is a multiple of kTileHeight; others are
  // recomputed on read.
  void Add(int level, uint64_t index, const Hash& hash);
  // Appends the buffered hashes to their tiles. DataLoss if a tile is not
  // exactly as long as the nodes before the buffered ones require.
  [[nodiscard]] absl::Status Flush();
  // Drops buffered hashes (after a failed transaction).
  void Discard() { pending_.clear(); }

 private:
  TileWriter(sqlite::Statement select, sqlite::Statement upsert)
      : select_(std::move(select)), upsert_(std::move(upsert)) {}
  struct Pending {
    uint64_t first_offset;  // offset in the tile of the first buffered hash
    std::string hashes;
  };
  sqlite::Statement select_;
  sqlite::Statement upsert_;
  std::map<std::pair<int, uint64_t>, Pending> pending_;  // (stratum, tile)
};

// SubtreeHashes read from tiles, caching the tiles it has read: use one
// reader per proof (or per consistent snapshot).
class TileReader final : public SubtreeHashes {
 public:
  static absl::StatusOr<std::unique_ptr<TileReader>> Create(
      sqlite::Database& db);
  absl::StatusOr<Hash> Get(int level, uint64_t index) override;
  void ClearCache() { cache_.clear(); }

 private:
  explicit TileReader(sqlite::Statement select) : select_(std::move(select)) {}
  sqlite::Statement select_;
  std::map<std::pair<int, uint64_t>, std::string> cache_;
};

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_HASH_STORE_H_
