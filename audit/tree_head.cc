#include "audit/tree_head.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::audit {
namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

absl::StatusOr<std::string> PublicDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InternalError("cannot encode the public key");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

absl::StatusOr<std::string> PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio, key) != 1) {
    BIO_free(bio);
    return absl::InternalError("cannot encode the public key as PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

absl::StatusOr<std::string> PrivatePem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0,
                                                 nullptr, nullptr) != 1) {
    BIO_free(bio);
    return absl::InternalError("cannot encode the private key as PEM");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

absl::StatusOr<std::string> KeyIdOf(EVP_PKEY* key) {
  auto der = PublicDer(key);
  if (!der.ok()) return der.status();
  return HexEncode(Sha256(*der));
}

int64_t TimestampMs(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}

}  // namespace

std::string TreeHeadSignedData(uint64_t tree_size, int64_t timestamp_ms,
                               const Hash& root) {
  std::string out;
  out.reserve(49);
  out.push_back(static_cast<char>(kTreeHeadVersion));
  PutU64(&out, tree_size);
  PutU64(&out, static_cast<uint64_t>(timestamp_ms));
  out.append(reinterpret_cast<const char*>(root.data()), root.size());
  return out;
}

absl::StatusOr<Hash> RootOf(const accord::v1::SignedTreeHead& head) {
  auto h = HashFromBytes(head.root_hash());
  if (!h.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree head root_hash must be 32 bytes, got ", head.root_hash().size()));
  }
  return h;
}

absl::StatusOr<std::unique_ptr<TreeHeadSigner>> TreeHeadSigner::FromKeyFile(
    const std::string& path) {
  if (auto s = CheckSecretFilePermissions(path); !s.ok()) return s;
  auto pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  auto signer = FromPrivateKeyPem(*pem);
  if (!signer.ok()) {
    return absl::Status(signer.status().code(),
                        absl::StrCat(path, ": ", signer.status().message()));
  }
  return signer;
}

absl::StatusOr<std::unique_ptr<TreeHeadSigner>>
TreeHeadSigner::FromPrivateKeyPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    return absl::InvalidArgumentError("not a PEM private key");
  }
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("tree head signing key must be Ed25519");
  }
  auto id = KeyIdOf(key);
  auto pub = PublicPem(key);
  if (!id.ok() || !pub.ok()) {
    EVP_PKEY_free(key);
    return !id.ok() ? id.status() : pub.status();
  }
  return std::unique_ptr<TreeHeadSigner>(new TreeHeadSigner(key, *id, *pub));
}

TreeHeadSigner::~TreeHeadSigner() { EVP_PKEY_free(key_); }

absl::StatusOr<accord::v1::SignedTreeHead> TreeHeadSigner::Sign(
    uint64_t tree_size, const Hash& root, absl::Time time) const {
  const int64_t ms = absl::ToUnixMillis(time);
  const std::string data = TreeHeadSignedData(tree_size, ms, root);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t sig_len = sizeof(sig);
  const bool ok =
      ctx != nullptr &&
      EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len,
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("Ed25519 signing failed");
  accord::v1::SignedTreeHead head;
  head.set_tree_size(tree_size);
  head.set_root_hash(std::string(AsBytes(root)));
  *head.mutable_timestamp() = ToProtoTime(absl::FromUnixMillis(ms));
  head.set_signature(reinterpret_cast<char*>(sig), sig_len);
  head.set_key_id(key_id_);
  return head;
}

absl::StatusOr<std::unique_ptr<TreeHeadVerifier>>
TreeHeadVerifier::FromPublicKeyPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("tree head key must be Ed25519");
  }
  auto id = KeyIdOf(key);
  if (!id.ok()) {
    EVP_PKEY_free(key);
    return id.status();
  }
  return std::unique_ptr<TreeHeadVerifier>(new TreeHeadVerifier(key, *id));
}

absl::StatusOr<std::unique_ptr<TreeHeadVerifier>>
TreeHeadVerifier::FromPublicKeyFile(const std::string& path) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  auto v = FromPublicKeyPem(*pem);
  if (!v.ok()) {
    return absl::Status(v.status().code(),
                        absl::StrCat(path, ": ", v.status().message()));
  }
  return v;
}

TreeHeadVerifier::~TreeHeadVerifier() { EVP_PKEY_free(key_); }

absl::Status TreeHeadVerifier::Verify(
    const accord::v1::SignedTreeHead& head) const {
  auto root = RootOf(head);
  if (!root.ok()) return root.status();
  const auto& ts = head.timestamp();
  if (ts.nanos() < 0 || ts.nanos() % 1000000 != 0) {
    return absl::InvalidArgumentError(
        "tree head timestamp must be whole milliseconds");
  }
  const std::string claimed =
      head.key_id() == key_id_
          ? std::string()
          : absl::StrCat(" (the head names key ", head.key_id(), ")");
  if (head.signature().size() != 64) {
    return absl::PermissionDeniedError(
        absl::StrCat("tree head signature invalid for key ", key_id_, claimed));
  }
  const std::string data =
      TreeHeadSignedData(head.tree_size(), TimestampMs(ts), *root);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key_) == 1 &&
      EVP_DigestVerify(
          ctx, reinterpret_cast<const unsigned char*>(head.signature().data()),
          head.signature().size(),
          reinterpret_cast<const unsigned char*>(data.data()),
          data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    return absl::PermissionDeniedError(
        absl::StrCat("tree head signature invalid for key ", key_id_, claimed));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GenerateTreeHeadKeyPem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr)
    return absl::InternalError("Ed25519 key generation failed");
  auto pem = PrivatePem(key);
  EVP_PKEY_free(key);
  return pem;
}

absl::StatusOr<std::string> TreeHeadKeyPemFromSeed(absl::string_view seed) {
  if (seed.size() != 32)
    return absl::InvalidArgumentError("Ed25519 seed must be 32 bytes");
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(seed.data()), 32);
  if (key == nullptr)
    return absl::InternalError("cannot build the Ed25519 key");
  auto pem = PrivatePem(key);
  EVP_PKEY_free(key);
  return pem;
}

}  // namespace accord::audit
