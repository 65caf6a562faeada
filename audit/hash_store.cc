#include "audit/hash_store.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace accord::audit {

const char kMerkleTilesSchema[] =
    "CREATE TABLE merkle_tiles("
    "  stratum INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  hashes BLOB NOT NULL,"
    "  PRIMARY KEY (stratum, idx)) WITHOUT ROWID;";

namespace {
constexpr char kSelectTile[] =
    "SELECT hashes FROM merkle_tiles WHERE stratum = ? AND idx = ?";
constexpr char kUpsertTile[] =
    "INSERT INTO merkle_tiles(stratum, idx, hashes) VALUES (?, ?, ?) "
    "ON CONFLICT(stratum, idx) DO UPDATE SET hashes = excluded.hashes";

absl::StatusOr<std::string> ReadTile(sqlite::Statement& select, int stratum,
                                     uint64_t tile) {
  select.Bind(1, int64_t{stratum}).Bind(2, static_cast<int64_t>(tile));
  auto step = select.Next();
  std::string out;
  if (step.ok() && *step == sqlite::Statement::Step::kRow)
    out = std::string(select.Blob(0));
  select.Reset();
  if (!step.ok()) return step.status();
  return out;
}
}  // namespace

absl::StatusOr<std::unique_ptr<TileWriter>> TileWriter::Create(
    sqlite::Database& db) {
  auto select = db.Prepare(kSelectTile);
  if (!select.ok()) return select.status();
  auto upsert = db.Prepare(kUpsertTile);
  if (!upsert.ok()) return upsert.status();
  return std::unique_ptr<TileWriter>(
      new TileWriter(std::move(*select), std::move(*upsert)));
}

void TileWriter::Add(int level, uint64_t index, const Hash& hash) {
  if (level % kTileHeight != 0) return;
  const int stratum = level / kTileHeight;
  auto [it, inserted] = pending_.try_emplace({stratum, index >> kTileHeight});
  if (inserted) it->second.first_offset = index & (kTileWidth - 1);
  it->second.hashes.append(reinterpret_cast<const char*>(hash.data()),
                           hash.size());
}

absl::Status TileWriter::Flush() {
  for (auto& [key, pending] : pending_) {
    auto tile = ReadTile(select_, key.first, key.second);
    if (!tile.ok()) return tile.status();
    if (tile->size() != pending.first_offset * 32) {
      return absl::DataLossError(
          absl::StrCat("merkle tile (", key.first, ", ", key.second, ") holds ",
                       tile->size() / 32, " hashes where ",
                       pending.first_offset, " were expected"));
    }
    tile->append(pending.hashes);
    upsert_.Bind(1, int64_t{key.first})
        .Bind(2, static_cast<int64_t>(key.second))
        .BindBlob(3, *tile);
    if (auto s = upsert_.Run(); !s.ok()) return s;
  }
  pending_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TileReader>> TileReader::Create(
    sqlite::Database& db) {
  auto select = db.Prepare(kSelectTile);
  if (!select.ok()) return select.status();
  return std::unique_ptr<TileReader>(new TileReader(std::move(*select)));
}

absl::StatusOr<Hash> TileReader::Get(int level, uint64_t index) {
  if (level < 0 || level >= 64)
    return absl::InvalidArgumentError("bad subtree level");
  const int stratum = level / kTileHeight;
  const int rel = level % kTileHeight;
  const uint64_t width = uint64_t{1} << rel;
  if (index > (UINT64_MAX >> rel))
    return absl::InvalidArgumentError("bad subtree index");
  const uint64_t base = index << rel;
  const uint64_t tile_index = base >> kTileHeight;
  const uint64_t offset = base & (kTileWidth - 1);
  auto key = std::make_pair(stratum, tile_index);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    auto tile = ReadTile(select_, stratum, tile_index);
    if (!tile.ok()) return tile.status();
    it = cache_.emplace(key, std::move(*tile)).first;
  }
  const std::string& tile = it->second;
  if (tile.size() < (offset + width) * 32) {
    return absl::NotFoundError(absl::StrCat("subtree (", level, ", ", index,
                                            ") is not in the hash store"));
  }
  std::vector<Hash> hashes(width);
  for (uint64_t i = 0; i < width; ++i) {
    std::memcpy(hashes[i].data(), tile.data() + (offset + i) * 32, 32);
  }
  for (uint64_t n = width; n > 1; n /= 2) {
    for (uint64_t i = 0; i < n / 2; ++i)
      hashes[i] = NodeHash(hashes[2 * i], hashes[2 * i + 1]);
  }
  return hashes[0];
}

}  // namespace accord::audit
