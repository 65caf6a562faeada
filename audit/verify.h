// Offline verification of the audit log with only the gateway's public key:
// whole JSON Lines exports (audit/export_format.h) and standalone inclusion
// and consistency proofs.
//
// An export is verified as a stream: each row's leaf is recomputed and
// checked against the row's readable fields, the rows must run in sequence
// without gaps or repeats, the Merkle root is rebuilt with a compact range
// (O(log n) memory), and must equal the root of the signed tree head at the
// end, whose signature must verify. The error names the first bad entry.
// Rows are parsed, checked and hashed in batches of 2048 on one thread per
// core while the calling thread reads ahead and walks the results in order;
// memory stays bounded (two batches).
//
// Proof bundles are JSON objects, one of:
//   {"inclusion_proof":{"leaf_index":I,"tree_size":N,"path":["<hex>",...]},
//    "leaf":"<base64 leaf>","tree_head":{...}}
//   {"consistency_proof":{"first_size":M,"second_size":N,"path":["<hex>",...]},
//    "first_tree_head":{...},"second_tree_head":{...}}
// with tree heads as in the export's last line.
//
// Thread-safe (pure functions; VerifyJsonlExport starts and joins its own
// worker threads); a LineSource belongs to one thread.
#ifndef ACCORD_AUDIT_VERIFY_H_
#define ACCORD_AUDIT_VERIFY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accord/v1/audit.pb.h"
#include "audit/tree_head.h"

namespace accord::audit {

// Lines of a text, without their '\n' (a trailing '\r' is kept).
class LineSource {
 public:
  virtual ~LineSource() = default;
  // False at the end. The view is valid until the next call.
  virtual absl::StatusOr<bool> Next(absl::string_view* line) = 0;
};
std::unique_ptr<LineSource> LinesFromString(absl::string_view text);
// Streams a file in 1 MiB reads; lines longer than 1 MiB are an error.
absl::StatusOr<std::unique_ptr<LineSource>> LinesFromFile(
    const std::string& path);

struct ExportSummary {
  uint64_t from_seq = 0;
  uint64_t to_seq = 0;  // == tree_head.tree_size()
  accord::v1::SignedTreeHead tree_head;
};

// OK when the export is complete, untampered and signed by `key`. Errors
// (DataLoss, or PermissionDenied for the signature) name the first problem:
//   "entry 1234: leaf does not match its fields (purpose)"
//   "entry 17 missing: sequence jumps from 16 to 18"
//   "entries out of order at line 20: entry 19 comes before entry 18 (line 21)"
//   "root mismatch: export does not match the signed tree head of size N"
//   "tree head signature invalid for key <id>"
absl::StatusOr<ExportSummary> VerifyJsonlExport(LineSource& lines,
                                                const TreeHeadVerifier& key);
absl::StatusOr<ExportSummary> VerifyJsonlExportFile(
    const std::string& path, const TreeHeadVerifier& key);

// Standalone proofs against signed tree heads.
[[nodiscard]] absl::Status VerifyInclusionProof(
    const accord::v1::InclusionProof& proof, absl::string_view leaf,
    const accord::v1::SignedTreeHead& head, const TreeHeadVerifier& key);
[[nodiscard]] absl::Status VerifyConsistencyProof(
    const accord::v1::ConsistencyProof& proof,
    const accord::v1::SignedTreeHead& first,
    const accord::v1::SignedTreeHead& second, const TreeHeadVerifier& key);

std::string InclusionProofBundle(const accord::v1::InclusionProof& proof,
                                 absl::string_view leaf,
                                 const accord::v1::SignedTreeHead& head);
std::string ConsistencyProofBundle(const accord::v1::ConsistencyProof& proof,
                                   const accord::v1::SignedTreeHead& first,
                                   const accord::v1::SignedTreeHead& second);
// Verifies either kind of bundle.
[[nodiscard]] absl::Status VerifyProofBundle(absl::string_view json,
                                             const TreeHeadVerifier& key);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_VERIFY_H_
