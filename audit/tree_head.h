// Signed tree heads: Ed25519 signatures over the audit log's size and root.
//
// The signed bytes (TreeHeadSignedData) are a fixed 49-byte encoding:
//   version      1 byte   = 0x01
//   tree_size    8 bytes  unsigned, big-endian
//   timestamp    8 bytes  milliseconds since the Unix epoch, big-endian
//   root_hash   32 bytes  RFC 6962 Merkle tree hash
// A SignedTreeHead's timestamp therefore always has whole milliseconds.
// key_id is the lower-case hex SHA-256 of the key's DER SubjectPublicKeyInfo.
//
// TreeHeadSigner and TreeHeadVerifier are immutable after construction and
// thread-safe.
#ifndef ACCORD_AUDIT_TREE_HEAD_H_
#define ACCORD_AUDIT_TREE_HEAD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/audit.pb.h"
#include "audit/merkle.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace accord::audit {

inline constexpr uint8_t kTreeHeadVersion = 1;

std::string TreeHeadSignedData(uint64_t tree_size, int64_t timestamp_ms,
                               const Hash& root);

class TreeHeadSigner {
 public:
  // Loads a PEM Ed25519 private key file, refusing files that group or others
  // can read or write.
  static absl::StatusOr<std::unique_ptr<TreeHeadSigner>> FromKeyFile(
      const std::string& path);
  static absl::StatusOr<std::unique_ptr<TreeHeadSigner>> FromPrivateKeyPem(
      absl::string_view pem);
  ~TreeHeadSigner();

  // Signs (tree_size, root) at `time`, truncated to milliseconds.
  absl::StatusOr<accord::v1::SignedTreeHead> Sign(uint64_t tree_size,
                                                  const Hash& root,
                                                  absl::Time time) const;
  const std::string& key_id() const { return key_id_; }
  // The public half, PEM SubjectPublicKeyInfo: what auditors verify with.
  const std::string& public_key_pem() const { return public_key_pem_; }

 private:
  TreeHeadSigner(EVP_PKEY* key, std::string key_id, std::string public_pem)
      : key_(key),
        key_id_(std::move(key_id)),
        public_key_pem_(std::move(public_pem)) {}
  EVP_PKEY* key_;
  std::string key_id_;
  std::string public_key_pem_;
};

class TreeHeadVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<TreeHeadVerifier>> FromPublicKeyPem(
      absl::string_view pem);
  static absl::StatusOr<std::unique_ptr<TreeHeadVerifier>> FromPublicKeyFile(
      const std::string& path);
  ~TreeHeadVerifier();

  // OK when `head` is well formed and signed by this key. Otherwise
  // PermissionDenied "tree head signature invalid for key <id>" (naming the
  // key the head claims when it differs) or InvalidArgument for a malformed
  // head.
  [[nodiscard]] absl::Status Verify(
      const accord::v1::SignedTreeHead& head) const;
  const std::string& key_id() const { return key_id_; }

 private:
  TreeHeadVerifier(EVP_PKEY* key, std::string key_id)
      : key_(key), key_id_(std::move(key_id)) {}
  EVP_PKEY* key_;
  std::string key_id_;
};

// A new random Ed25519 private key as PEM (PKCS#8), for key generation tools
// and tests.
absl::StatusOr<std::string> GenerateTreeHeadKeyPem();
// The PEM private key for a fixed 32-byte Ed25519 seed: deterministic keys
// for tests and fuzzers only.
absl::StatusOr<std::string> TreeHeadKeyPemFromSeed(absl::string_view seed);

// The tree head's root as a Hash; InvalidArgument unless 32 bytes.
absl::StatusOr<Hash> RootOf(const accord::v1::SignedTreeHead& head);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_TREE_HEAD_H_
