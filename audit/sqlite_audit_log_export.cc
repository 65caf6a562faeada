// Exports of the SQLite audit log, streamed from a read snapshot of their own.
#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit::sqlite_log {

absl::Status SqliteAuditLog::Export(uint64_t from_seq, uint64_t to_seq,
                                    ExportFormat format,
                                    const ExportSink& sink) {
  absl::StatusOr<SignedTreeHead> head;
  if (to_seq == 0) {
    head = LatestTreeHead();
    if (!head.ok()) return head.status();
    to_seq = head->tree_size();
  } else if (format == ExportFormat::kJsonLines) {
    head = TreeHeadAt(to_seq);
    if (!head.ok()) return head.status();
  } else if (to_seq > durable_size_.load()) {
    return absl::OutOfRangeError(absl::StrCat(
        "to_seq ", to_seq, " exceeds the log's size ", durable_size_.load()));
  }
  if (from_seq > to_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_seq ", from_seq, " is after to_seq ", to_seq));
  }
  // A connection of its own: one consistent snapshot, no lock held while the
  // sink (a gRPC stream) is slow.
  sqlite::Database::Options ro;
  ro.read_only = true;
  auto db = sqlite::Database::Open(options_.db_path, ro);
  if (!db.ok()) return db.status();
  if (auto s = (*db)->Exec("BEGIN"); !s.ok()) return s;

  ExportProgress progress;
  progress.entries_total = to_seq - from_seq;
  std::string chunk;
  constexpr size_t kChunkBytes = 64 * 1024;
  if (format == ExportFormat::kJsonLines) {
    auto reader = TileReader::Create(**db);
    if (!reader.ok()) return reader.status();
    auto prefix = CompactRange::Load(from_seq, **reader);
    if (!prefix.ok()) return prefix.status();
    chunk = ExportHeaderLine({from_seq, to_seq, prefix->nodes()});
  } else {
    chunk = CsvHeader();
  }
  auto q = (*db)->Prepare(
      "SELECT seq, leaf FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq");
  if (!q.ok()) return q.status();
  q->Bind(1, static_cast<int64_t>(from_seq))
      .Bind(2, static_cast<int64_t>(to_seq));
  uint64_t expected = from_seq;
  while (true) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Step::kDone) break;
    const uint64_t seq = static_cast<uint64_t>(q->Int(0));
    if (seq != expected) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", expected, " is missing"));
    }
    ++expected;
    const absl::string_view leaf = q->Blob(1);
    auto entry = DecodeLeaf(leaf);
    if (!entry.ok()) {
      return absl::DataLossError(
          absl::StrCat("audit entry ", seq, ": ", entry.status().message()));
    }
    chunk.append(format == ExportFormat::kJsonLines ? JsonLine(*entry, leaf)
                                                    : CsvLine(*entry, leaf));
    ++progress.entries_so_far;
    if (chunk.size() >= kChunkBytes) {
      if (auto s = sink(chunk, progress); !s.ok()) return s;
      chunk.clear();
    }
  }
  if (expected != to_seq) {
    return absl::DataLossError(
        absl::StrCat("audit entry ", expected, " is missing"));
  }
  if (format == ExportFormat::kJsonLines) chunk.append(TreeHeadLine(*head));
  (void)(*db)->Exec("COMMIT");
  return sink(chunk, progress);
}

}  // namespace accord::audit::sqlite_log
