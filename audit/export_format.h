// The framing of a JSON Lines audit export (the rows are audit/entry.h):
//
//   {"accord_audit_export":1,"from_seq":F,"to_seq":T,"prefix":["<hex>",...]}
//   {"seq":F,...,"leaf":"<base64>"}          one row per entry F .. T-1
//   {"tree_head":{"tree_size":T,"root_hash":"<hex>","timestamp":"<RFC 3339>",
//                 "signature":"<base64>","key_id":"<hex>"}}
//
// "prefix" is the compact range of the tree's first F leaves (the roots of
// its perfect subtrees, largest first; empty when F is 0), so a verifier can
// recompute the root of size T from a partial export. A prefix that lies
// makes the root mismatch: it needs no trust.
//
// Thread-safe (pure functions).
#ifndef ACCORD_AUDIT_EXPORT_FORMAT_H_
#define ACCORD_AUDIT_EXPORT_FORMAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accord/v1/audit.pb.h"
#include "audit/json.h"
#include "audit/merkle.h"

namespace accord::audit {

inline constexpr int kExportFormatVersion = 1;

struct ExportHeader {
  uint64_t from_seq = 0;
  uint64_t to_seq = 0;
  std::vector<Hash> prefix;
};

std::string ExportHeaderLine(const ExportHeader& header);  // with '\n'
absl::StatusOr<ExportHeader> ParseExportHeaderLine(absl::string_view line);

std::string TreeHeadLine(const accord::v1::SignedTreeHead& head);  // with '\n'
// True when the line looks like the tree head line (starts {"tree_head").
bool IsTreeHeadLine(absl::string_view line);
absl::StatusOr<accord::v1::SignedTreeHead> ParseTreeHeadLine(
    absl::string_view line);

// The tree head object on its own, for proof bundles.
void AppendTreeHeadJson(std::string* out,
                        const accord::v1::SignedTreeHead& head);
absl::StatusOr<accord::v1::SignedTreeHead> ParseTreeHeadJson(JsonCursor& c);

// Hex of a hash, and its inverse (InvalidArgument unless 64 hex digits).
std::string HashHex(const Hash& h);
absl::StatusOr<Hash> HashFromHex(absl::string_view hex);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_EXPORT_FORMAT_H_
