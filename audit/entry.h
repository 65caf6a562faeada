// The audit entry as bytes: its canonical Merkle leaf encoding and the export
// line formats built from it.
//
// Leaf: one version byte 0x01 followed by the deterministic protobuf
// serialization of the AuditEntry (fields in number order, no unknown
// fields). DecodeLeaf accepts only canonical leaves, so every entry has
// exactly one leaf and one leaf hash.
//
// JSON Lines: one object per entry with every AuditEntry field under its
// proto name (enums by name, time as RFC 3339 UTC, absent messages as null)
// plus "leaf": the base64 leaf bytes, so an auditor recomputes the leaf hash
// and checks that the readable fields say what the leaf says.
// CSV: a header row, then one RFC 4180 row per entry (CRLF line ends).
//
// Entries never hold record values; these encodings add none. All functions
// are thread-safe (pure).
#ifndef ACCORD_AUDIT_ENTRY_H_
#define ACCORD_AUDIT_ENTRY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "accord/v1/audit.pb.h"

namespace accord::audit {

inline constexpr char kLeafVersion = 0x01;

std::string EncodeLeaf(const accord::v1::AuditEntry& entry);
// The same into *leaf (replacing its contents, reusing its memory).
void EncodeLeafTo(const accord::v1::AuditEntry& entry, std::string* leaf);

// The leaf in two steps, so the costly part runs on the appending thread and
// the log's writer only adds what it assigns. seq and time are fields 1 and 2,
// the first in the encoding, so
//   AppendLeaf(seq, time, EncodeLeafBody(e), &leaf)
// gives exactly EncodeLeaf(e with seq and time set).
// EncodeLeafBody requires entry.seq() == 0 and no time.
std::string EncodeLeafBody(const accord::v1::AuditEntry& entry);
void AppendLeaf(uint64_t seq, const google::protobuf::Timestamp& time,
                absl::string_view body, std::string* leaf);
// True when every string field in the encoded body (at any depth) is valid
// UTF-8: what DecodeLeaf would accept, checked without building messages.
bool LeafBodyIsUtf8(absl::string_view body);
// InvalidArgument when the bytes are not a canonical leaf.
absl::StatusOr<accord::v1::AuditEntry> DecodeLeaf(absl::string_view leaf);

// One JSON Lines row (with the trailing '\n') for an entry and its leaf.
std::string JsonLine(const accord::v1::AuditEntry& entry,
                     absl::string_view leaf);

struct JsonRow {
  accord::v1::AuditEntry entry;  // the readable fields
  std::string leaf;              // decoded "leaf"
  std::string scratch;           // parser's buffer, kept for reuse
};
// Parses one row (without its newline). Unknown or repeated keys are errors.
absl::StatusOr<JsonRow> ParseJsonLine(absl::string_view line);
// The same into an existing row, reusing its memory (for long exports).
absl::Status ParseJsonLineInto(absl::string_view line, JsonRow* row);

// The top-level field names that differ between two entries (for naming
// what a tampered row changed).
std::vector<std::string> DifferingFields(const accord::v1::AuditEntry& a,
                                         const accord::v1::AuditEntry& b);

// CSV header row and one row per entry, each ending in CRLF. Text cells that
// a spreadsheet would run as a formula (starting = + - @ tab CR) get a
// leading apostrophe; the "leaf" column always holds the exact entry.
std::string CsvHeader();
std::string CsvLine(const accord::v1::AuditEntry& entry,
                    absl::string_view leaf);

// A readable account for a subject access request: who saw what, when, why
// and under which agreement, one paragraph per entry.
std::string SubjectAccessReport(
    absl::Span<const accord::v1::AuditEntry> entries);

// RFC 3339 UTC with as many fractional digits as needed, e.g.
// "2024-05-01T09:30:00.25Z".
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);
absl::StatusOr<google::protobuf::Timestamp> ParseTimestamp(
    absl::string_view text);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_ENTRY_H_
