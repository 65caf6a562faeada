#include "runtime/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace accord {

Digest Sha256(absl::string_view data) {
  Digest out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         out.data());
  return out;
}

// HMAC (RFC 2104) over SHA-256, with the digest fetched once and one digest
// context per thread: OpenSSL 3's one-shot HMAC() fetches the algorithm and
// builds a MAC context on every call, which for the short messages hashed
// here (subject tokens, pseudonyms) costs several times the hashing itself.
// The padded key is wiped before returning.
Digest HmacSha256(absl::string_view key, absl::string_view data) {
  constexpr size_t kBlock = 64;
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(
      EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char k[kBlock] = {0};
  if (key.size() > kBlock) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  unsigned char pad[kBlock];
  Digest inner, out;
  bool ok = kSha256 != nullptr && ctx != nullptr;
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x36;
  ok = ok && EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) == 1 &&
       EVP_DigestUpdate(ctx.get(), pad, kBlock) == 1 &&
       EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1 &&
       EVP_DigestFinal_ex(ctx.get(), inner.data(), nullptr) == 1;
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k[i] ^ 0x5c;
  ok = ok && EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) == 1 &&
       EVP_DigestUpdate(ctx.get(), pad, kBlock) == 1 &&
       EVP_DigestUpdate(ctx.get(), inner.data(), inner.size()) == 1 &&
       EVP_DigestFinal_ex(ctx.get(), out.data(), nullptr) == 1;
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(pad, sizeof(pad));
  if (!ok) {
    // Only if OpenSSL itself is broken (e.g. SHA-256 unavailable): the
    // library's own HMAC, which reports nothing either.
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         out.data(), &len);
  }
  return out;
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 0xf];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError("hex string has odd length");
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "non-hex character at offset ", hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                          static_cast<int>(n)) != 1) {
    // Without randomness nothing Accord does is safe.
    abort();
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::Status CheckSecretFilePermissions(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: secret file is accessible by group or others (mode %04o); "
        "run: chmod 600 %s",
        path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> LoadHexSecretFile(const std::string& path,
                                              size_t min_bytes) {
  if (auto s = CheckSecretFilePermissions(path); !s.ok()) return s;
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string hex;
  for (char c : *text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  auto key = HexDecode(hex);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a hex key: ", key.status().message()));
  }
  if (key->size() < min_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": key is ", key->size(), " bytes; at least ",
                     min_bytes, " required"));
  }
  return key;
}

}  // namespace accord
