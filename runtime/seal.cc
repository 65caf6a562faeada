#include "runtime/seal.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"

namespace accord {
namespace {

constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr char kHkdfInfo[] = "accord.v1 referral seal";

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string RawPublic(EVP_PKEY* key) {
  std::string out(kX25519KeySize, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(
          key, reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != kX25519KeySize) {
    return "";
  }
  return out;
}

std::string RawPrivate(EVP_PKEY* key) {
  std::string out(kX25519KeySize, '\0');
  size_t len = out.size();
  if (EVP_PKEY_get_raw_private_key(
          key, reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != kX25519KeySize) {
    return "";
  }
  return out;
}

// X25519(private, peer_public), then HKDF-SHA256 to a 32-byte AES key.
absl::StatusOr<std::string> DeriveKey(absl::string_view private_key,
                                      absl::string_view peer_public,
                                      absl::string_view eph_public,
                                      absl::string_view recipient_public) {
  Pkey priv(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                         U(private_key), private_key.size()));
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr,
                                        U(peer_public), peer_public.size()));
  if (!priv || !peer) {
    return absl::InvalidArgumentError("not an X25519 key (need 32 bytes)");
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new(priv.get(), nullptr));
  std::string shared(kX25519KeySize, '\0');
  size_t shared_len = shared.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(),
                      reinterpret_cast<unsigned char*>(shared.data()),
                      &shared_len) != 1 ||
      shared_len != kX25519KeySize) {
    return absl::InvalidArgumentError("X25519 key agreement failed");
  }
  const std::string salt = absl::StrCat(eph_public, recipient_public);
  std::string key(32, '\0');
  size_t key_len = key.size();
  PkeyCtx kdf(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  if (!kdf || EVP_PKEY_derive_init(kdf.get()) != 1 ||
      EVP_PKEY_CTX_set_hkdf_md(kdf.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_salt(kdf.get(), U(salt),
                                  static_cast<int>(salt.size())) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_key(kdf.get(), U(shared),
                                 static_cast<int>(shared.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(
          kdf.get(), reinterpret_cast<const unsigned char*>(kHkdfInfo),
          static_cast<int>(sizeof(kHkdfInfo) - 1)) != 1 ||
      EVP_PKEY_derive(kdf.get(), reinterpret_cast<unsigned char*>(key.data()),
                      &key_len) != 1) {
    OPENSSL_cleanse(shared.data(), shared.size());
    return absl::InternalError("HKDF-SHA256 failed");
  }
  OPENSSL_cleanse(shared.data(), shared.size());
  return key;
}

absl::StatusOr<Pkey> ReadPem(const std::string& path, bool is_private) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open key file ", path));
  }
  EVP_PKEY* key = is_private ? PEM_read_PrivateKey(f, nullptr, nullptr, nullptr)
                             : PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_X25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an X25519 ",
                     is_private ? "private" : "public", " key in PEM"));
  }
  return Pkey(key);
}

}  // namespace

X25519KeyPair GenerateX25519KeyPair() {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    abort();  // without key generation nothing can be sealed safely
  }
  Pkey key(raw);
  return {RawPrivate(key.get()), RawPublic(key.get())};
}

absl::StatusOr<std::string> LoadX25519PublicKey(const std::string& pem_path) {
  auto key = ReadPem(pem_path, /*is_private=*/false);
  if (!key.ok()) return key.status();
  return RawPublic(key->get());
}

absl::StatusOr<X25519KeyPair> LoadX25519PrivateKey(
    const std::string& pem_path) {
  if (auto s = CheckSecretFilePermissions(pem_path); !s.ok()) return s;
  auto key = ReadPem(pem_path, /*is_private=*/true);
  if (!key.ok()) return key.status();
  return X25519KeyPair{RawPrivate(key->get()), RawPublic(key->get())};
}

std::string SealKeyId(absl::string_view public_key) {
  return HexEncode(Sha256(public_key)).substr(0, 16);
}

absl::StatusOr<accord::v1::SealedPayload> Seal(
    absl::string_view recipient_public_key, absl::string_view plaintext,
    absl::string_view associated_data) {
  if (recipient_public_key.size() != kX25519KeySize) {
    return absl::InvalidArgumentError(
        "recipient public key must be 32 bytes (X25519)");
  }
  const X25519KeyPair eph = GenerateX25519KeyPair();
  auto key = DeriveKey(eph.private_key, recipient_public_key, eph.public_key,
                       recipient_public_key);
  if (!key.ok()) return key.status();
  const std::string nonce = RandomBytes(kNonceSize);

  std::string out(plaintext.size() + kTagSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0, total = 0;
  bool ok =
      ctx &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize,
                          nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(*key), U(nonce)) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(associated_data),
                        static_cast<int>(associated_data.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), o, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) == 1;
  if (ok) {
    total = len;
    ok = EVP_EncryptFinal_ex(ctx.get(), o + total, &len) == 1;
    total += len;
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                                 o + total) == 1;
  OPENSSL_cleanse(key->data(), key->size());
  if (!ok) return absl::InternalError("AES-256-GCM encryption failed");

  accord::v1::SealedPayload payload;
  payload.set_ephemeral_public_key(eph.public_key);
  payload.set_nonce(nonce);
  payload.set_ciphertext(std::move(out));
  payload.set_recipient_key_id(SealKeyId(recipient_public_key));
  return payload;
}

absl::StatusOr<std::string> Open(const X25519KeyPair& recipient,
                                 const accord::v1::SealedPayload& payload,
                                 absl::string_view associated_data) {
  if (payload.ephemeral_public_key().size() != kX25519KeySize) {
    return absl::InvalidArgumentError(
        "field payload.ephemeral_public_key must be 32 bytes");
  }
  if (payload.nonce().size() != kNonceSize) {
    return absl::InvalidArgumentError("field payload.nonce must be 12 bytes");
  }
  if (payload.ciphertext().size() < kTagSize) {
    return absl::InvalidArgumentError(
        "field payload.ciphertext is shorter than its authentication tag");
  }
  if (!payload.recipient_key_id().empty() &&
      payload.recipient_key_id() != SealKeyId(recipient.public_key)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "payload is sealed to key ", payload.recipient_key_id(),
        ", not to this agent's key ", SealKeyId(recipient.public_key)));
  }
  auto key = DeriveKey(recipient.private_key, payload.ephemeral_public_key(),
                       payload.ephemeral_public_key(), recipient.public_key);
  if (!key.ok()) return key.status();
  const std::string& ct = payload.ciphertext();
  const size_t body = ct.size() - kTagSize;
  std::string out(body, '\0');
  std::string tag = ct.substr(body);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize,
                          nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(*key),
                         U(payload.nonce())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(associated_data),
                        static_cast<int>(associated_data.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                        &len, U(ct), static_cast<int>(body)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                          tag.data()) == 1;
  int final_len = 0;
  ok = ok && EVP_DecryptFinal_ex(
                 ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len,
                 &final_len) == 1;
  OPENSSL_cleanse(key->data(), key->size());
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return absl::PermissionDeniedError(
        "sealed payload does not open with this key: altered, or sealed for "
        "another referral or recipient");
  }
  return out;
}

std::string ReferralAssociatedData(absl::string_view referral_id,
                                   absl::string_view from_org,
                                   absl::string_view to_org) {
  // Length-prefixed so no two different triples encode alike.
  return absl::StrCat("accord.v1 referral\n", referral_id.size(), ":",
                      referral_id, from_org.size(), ":", from_org,
                      to_org.size(), ":", to_org);
}

absl::StatusOr<std::map<std::string, std::string>> LoadReferralPublicKeys(
    const accord::v1::Partnership& partnership,
    const std::string& partnership_file) {
  std::map<std::string, std::string> out;
  for (const auto& org : partnership.organisations()) {
    if (org.referral_key_file().empty()) continue;
    auto key = LoadX25519PublicKey(
        ResolvePath(partnership_file, org.referral_key_file()));
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(partnership_file, ": organisation ", org.id(),
                       ": referral_key_file: ", key.status().message()));
    }
    out[org.id()] = std::move(*key);
  }
  return out;
}

}  // namespace accord
