#include "stats/people.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"

namespace accord::stats {

struct RunKeyer::Cipher {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~Cipher() { EVP_CIPHER_CTX_free(ctx); }
};

RunKeyer::RunKeyer(std::unique_ptr<Cipher> c) : cipher_(std::move(c)) {}
RunKeyer::RunKeyer(RunKeyer&&) noexcept = default;
RunKeyer& RunKeyer::operator=(RunKeyer&&) noexcept = default;
RunKeyer::~RunKeyer() = default;

absl::StatusOr<RunKeyer> RunKeyer::Create(const linkage::LinkageKey& key,
                                          absl::string_view run_id) {
  if (run_id.size() < 16) {
    return absl::InvalidArgumentError(
        "field run_id: a run id has at least 16 bytes");
  }
  std::string message("accord-statistics-run");
  message.push_back('\0');
  message.append(run_id.data(), run_id.size());
  auto run_key = HexDecode(key.HexMac(message));
  if (!run_key.ok() || run_key->size() != 32) {
    return absl::InternalError("could not derive the run key");
  }
  auto c = std::make_unique<Cipher>();
  c->ctx = EVP_CIPHER_CTX_new();
  const bool ok = c->ctx != nullptr &&
                  EVP_EncryptInit_ex(
                      c->ctx, EVP_aes_256_ecb(), nullptr,
                      reinterpret_cast<const unsigned char*>(run_key->data()),
                      nullptr) == 1 &&
                  EVP_CIPHER_CTX_set_padding(c->ctx, 0) == 1;
  OPENSSL_cleanse(run_key->data(), run_key->size());
  if (!ok) return absl::InternalError("could not set up the run key");
  return RunKeyer(std::move(c));
}

void RunKeyer::AppendGroup(const std::vector<std::string>& tokens,
                           std::string* out) {
  char prefixes[kTokenPrefixBytes * kMaxTokensPerPerson];
  size_t n = 0;
  for (const std::string& t : tokens) {
    if (n == kMaxTokensPerPerson) break;
    if (t.size() < kTokenPrefixBytes) continue;
    std::memcpy(prefixes + kTokenPrefixBytes * n, t.data(), kTokenPrefixBytes);
    ++n;
  }
  AppendPrefixGroup(absl::string_view(prefixes, kTokenPrefixBytes * n), out);
}

void RunKeyer::AppendPrefixGroup(absl::string_view prefixes, std::string* out) {
  const size_t n =
      std::min(prefixes.size() / kTokenPrefixBytes, kMaxTokensPerPerson);
  unsigned char enc[kTokenPrefixBytes * kMaxTokensPerPerson];
  int len = 0;
  if (n == 0 ||
      EVP_EncryptUpdate(cipher_->ctx, enc, &len,
                        reinterpret_cast<const unsigned char*>(prefixes.data()),
                        static_cast<int>(kTokenPrefixBytes * n)) != 1 ||
      len != static_cast<int>(kTokenPrefixBytes * n)) {
    // No token: a value that matches nobody.
    out->push_back(1);
    out->append(RandomBytes(kPersonKeyBytes));
    return;
  }
  out->push_back(static_cast<char>(n));
  for (size_t i = 0; i < n; ++i) {
    out->append(reinterpret_cast<const char*>(enc + kTokenPrefixBytes * i),
                kPersonKeyBytes);
  }
}

uint32_t PeopleUnion::Find(uint32_t x) {
  while (parent_[x] != x) {
    parent_[x] = parent_[parent_[x]];
    x = parent_[x];
  }
  return x;
}

absl::Status CheckPersonKeys(absl::string_view keys, uint64_t people) {
  uint64_t groups = 0;
  for (size_t at = 0; at < keys.size(); ++groups) {
    const auto n = static_cast<unsigned char>(keys[at]);
    if (n < 1 || n > kMaxTokensPerPerson ||
        keys.size() - at - 1 < n * kPersonKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("person_keys: group ", groups + 1, " is malformed"));
    }
    at += 1 + n * kPersonKeyBytes;
  }
  if (groups != people) {
    return absl::InvalidArgumentError(absl::StrCat(
        "person_keys: ", groups, " groups for ", people, " people"));
  }
  return absl::OkStatus();
}

absl::Status PeopleUnion::Add(absl::string_view keys, uint64_t people) {
  // Check the whole answer before adding any of it.
  if (auto s = CheckPersonKeys(keys, people); !s.ok()) return s;
  for (size_t at = 0; at < keys.size();) {
    const auto n = static_cast<unsigned char>(keys[at++]);
    uint32_t first = 0;
    for (unsigned i = 0; i < n; ++i, at += kPersonKeyBytes) {
      uint64_t v;
      std::memcpy(&v, keys.data() + at, sizeof v);
      auto [it, inserted] =
          values_.try_emplace(v, static_cast<uint32_t>(parent_.size()));
      if (inserted) parent_.push_back(it->second);
      const uint32_t node = it->second;
      if (i == 0) {
        first = node;
        continue;
      }
      const uint32_t a = Find(first), b = Find(node);
      if (a != b) {
        parent_[b] = a;
        ++unions_;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace accord::stats
