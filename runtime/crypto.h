// Cryptographic primitives Accord builds on, wrapping OpenSSL 3.
//
// Hashes and MACs for subject tokens and pseudonyms, randomness, hex, and the
// loading of key files (which refuses files other users can read). All
// functions are thread-safe.
#ifndef ACCORD_RUNTIME_CRYPTO_H_
#define ACCORD_RUNTIME_CRYPTO_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace accord {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(absl::string_view data);
Digest HmacSha256(absl::string_view key, absl::string_view data);

std::string HexEncode(absl::string_view bytes);
inline std::string HexEncode(const Digest& d) {
  return HexEncode(
      absl::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
// Accepts upper or lower case; fails on odd length or a non-hex character.
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

// Cryptographically secure random bytes (OpenSSL RAND_bytes).
std::string RandomBytes(size_t n);

// Constant-time comparison for MACs and tokens.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Refuses a secret file (private key, linkage key) that group or others can
// read or write, naming the file and its mode.
absl::Status CheckSecretFilePermissions(const std::string& path);

// Reads a whole file; NotFound names the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Reads a secret key file holding hex (whitespace ignored) of at least
// `min_bytes` bytes, after CheckSecretFilePermissions.
absl::StatusOr<std::string> LoadHexSecretFile(const std::string& path,
                                              size_t min_bytes);

}  // namespace accord

#endif  // ACCORD_RUNTIME_CRYPTO_H_
