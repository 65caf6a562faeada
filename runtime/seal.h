// Sealing referral content to one recipient: X25519 ephemeral-static key
// agreement, HKDF-SHA256 and AES-256-GCM (OpenSSL 3).
//
// The sender makes a fresh X25519 key pair per payload, agrees a secret with
// the recipient's long-term public key, and derives a one-time AES-256 key:
//   key = HKDF-SHA256(ikm = X25519(eph, recipient),
//                     salt = eph_public || recipient_public,
//                     info = "accord.v1 referral seal", 32 bytes)
// The ciphertext is AES-256-GCM with a random 12-byte nonce and the caller's
// associated data (for referrals: the referral id, sender and receiver, so a
// payload cannot be replayed under another referral or pathway). Only the
// holder of the recipient's private key can open it; any change to the
// ciphertext, nonce, ephemeral key or associated data makes Open fail.
//
// Keys are raw 32-byte strings. All functions are thread-safe.
#ifndef ACCORD_RUNTIME_SEAL_H_
#define ACCORD_RUNTIME_SEAL_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/records.pb.h"

namespace accord {

inline constexpr size_t kX25519KeySize = 32;

struct X25519KeyPair {
  std::string private_key;  // 32 bytes
  std::string public_key;   // 32 bytes
};

// A fresh key pair (for tests and tools; deploy/pki makes the real ones).
X25519KeyPair GenerateX25519KeyPair();

// Reads an X25519 public key from a PEM file (SubjectPublicKeyInfo, as
// `openssl pkey -pubout` writes it).
absl::StatusOr<std::string> LoadX25519PublicKey(const std::string& pem_path);
// Reads an X25519 private key from a PEM file (PKCS#8), refusing a file that
// group or others can read. Returns the key pair.
absl::StatusOr<X25519KeyPair> LoadX25519PrivateKey(const std::string& pem_path);

// A short stable id of a public key: the first 16 hex digits of its SHA-256.
std::string SealKeyId(absl::string_view public_key);

// Seals `plaintext` to `recipient_public_key`.
absl::StatusOr<accord::v1::SealedPayload> Seal(
    absl::string_view recipient_public_key, absl::string_view plaintext,
    absl::string_view associated_data);

// Opens a payload sealed to `recipient`. PermissionDenied when the payload
// was sealed to another key or was altered (the two are indistinguishable by
// design); InvalidArgument when it is malformed.
absl::StatusOr<std::string> Open(const X25519KeyPair& recipient,
                                 const accord::v1::SealedPayload& payload,
                                 absl::string_view associated_data);

// The associated data binding a referral's sealed content to its routing:
// the referral id, the sender and the receiver organisation.
std::string ReferralAssociatedData(absl::string_view referral_id,
                                   absl::string_view from_org,
                                   absl::string_view to_org);

// The referral public keys the partnership file publishes: for each
// organisation with a referral_key_file (relative to the partnership file),
// its raw X25519 public key. An unreadable or malformed key file is an error
// naming the organisation and the file.
absl::StatusOr<std::map<std::string, std::string>> LoadReferralPublicKeys(
    const accord::v1::Partnership& partnership,
    const std::string& partnership_file);

}  // namespace accord

#endif  // ACCORD_RUNTIME_SEAL_H_
