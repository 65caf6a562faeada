#include "runtime/revocation.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"

namespace accord {
namespace {

struct FileStamp {
  int64_t mtime_ns = 0;
  int64_t size = -1;
  uint64_t inode = 0;
  bool operator==(const FileStamp& o) const {
    return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
  }
};

absl::StatusOr<FileStamp> Stamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  FileStamp s;
  s.mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.size = st.st_size;
  s.inode = st.st_ino;
  return s;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

BioPtr MemBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  if (bn == nullptr) return "?";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "?";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

absl::Time Asn1ToTime(const ASN1_TIME* t) {
  if (t == nullptr) return absl::InfiniteFuture();
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfiniteFuture();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

}  // namespace

// Verdicts on certificates under one CRL, keyed by the certificate's exact
// PEM bytes: at most `capacity` of them, spread over shards that each have
// their own lock. A full shard forgets an arbitrary verdict to make room.
// Thread-safe; the cache is a memo, so its methods are const.
class RevocationList::VerdictCache {
 public:
  struct Verdict {
    bool revoked = false;
    std::string serial;  // hex, for the refusal message
  };

  explicit VerdictCache(size_t capacity) {
    const size_t shards = std::min<size_t>(kMaxShards, capacity);
    per_shard_ = shards == 0 ? 0 : capacity / shards;
    for (size_t i = 0; i < shards; ++i)
      shards_.push_back(std::make_unique<Shard>());
  }

  std::optional<Verdict> Find(absl::string_view pem) const {
    if (shards_.empty()) return std::nullopt;
    Shard& shard = ShardFor(pem);
    absl::ReaderMutexLock lock(&shard.mu);
    auto it = shard.verdicts.find(pem);
    if (it == shard.verdicts.end()) return std::nullopt;
    return it->second;
  }

  void Insert(absl::string_view pem, Verdict verdict) const {
    if (shards_.empty()) return;
    Shard& shard = ShardFor(pem);
    absl::MutexLock lock(&shard.mu);
    if (shard.verdicts.size() >= per_shard_ && !shard.verdicts.contains(pem))
      shard.verdicts.erase(shard.verdicts.begin());
    shard.verdicts.insert_or_assign(std::string(pem), std::move(verdict));
  }

  size_t size() const {
    size_t n = 0;
    for (const auto& shard : shards_) {
      absl::ReaderMutexLock lock(&shard->mu);
      n += shard->verdicts.size();
    }
    return n;
  }

 private:
  static constexpr size_t kMaxShards = 16;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, Verdict> verdicts ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(absl::string_view pem) const {
    return *shards_[absl::Hash<absl::string_view>()(pem) % shards_.size()];
  }

  size_t per_shard_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
};

struct RevocationList::State {
  explicit State(size_t cached_certificates) : cache(cached_certificates) {}
  ~State() { X509_CRL_free(crl); }
  X509_CRL* crl = nullptr;  // null when no CRL is configured
  FileStamp stamp;
  absl::Time next_update = absl::InfiniteFuture();
  size_t count = 0;
  // Verdicts under this CRL only: a reload starts with an empty cache.
  VerdictCache cache;
};

RevocationList::RevocationList(std::string crl_file, std::string ca_file,
                               const Clock* clock, size_t cached_certificates)
    : crl_file_(std::move(crl_file)),
      ca_file_(std::move(ca_file)),
      clock_(clock),
      cached_certificates_(cached_certificates) {}

RevocationList::~RevocationList() = default;

absl::StatusOr<std::unique_ptr<RevocationList>> RevocationList::Load(
    const std::string& crl_file, const std::string& ca_file,
    const Clock* clock, size_t cached_certificates) {
  std::unique_ptr<RevocationList> list(
      new RevocationList(crl_file, ca_file, clock, cached_certificates));
  std::shared_ptr<const State> state = std::make_shared<State>(0);
  if (!crl_file.empty()) {
    auto read = list->Read();
    if (!read.ok()) return read.status();
    state = *std::move(read);
  }
  absl::MutexLock lock(&list->mu_);
  list->state_ = std::move(state);
  return list;
}

absl::StatusOr<std::shared_ptr<const RevocationList::State>>
RevocationList::Read() const {
  auto stamp = Stamp(crl_file_);
  if (!stamp.ok()) return stamp.status();
  auto crl_text = ReadFile(crl_file_);
  if (!crl_text.ok()) return crl_text.status();
  auto ca_text = ReadFile(ca_file_);
  if (!ca_text.ok()) return ca_text.status();

  auto state = std::make_shared<State>(cached_certificates_);
  state->stamp = *stamp;
  BioPtr crl_bio = MemBio(*crl_text);
  state->crl = PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr);
  if (state->crl == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(crl_file_, ": no PEM certificate revocation list found"));
  }

  // The CRL must be signed by a CA of the bundle with the same subject.
  BioPtr ca_bio = MemBio(*ca_text);
  bool verified = false;
  bool issuer_found = false;
  while (X509* raw =
             PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr ca(raw);
    if (X509_NAME_cmp(X509_get_subject_name(ca.get()),
                      X509_CRL_get_issuer(state->crl)) != 0) {
      continue;
    }
    issuer_found = true;
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    if (key != nullptr && X509_CRL_verify(state->crl, key) == 1) {
      verified = true;
      break;
    }
  }
  if (!issuer_found) {
    return absl::InvalidArgumentError(absl::StrCat(
        crl_file_, ": not issued by a CA in ", ca_file_, " (issuer differs)"));
  }
  if (!verified) {
    return absl::InvalidArgumentError(absl::StrCat(
        crl_file_, ": signature does not verify with the CA in ", ca_file_));
  }
  state->next_update = Asn1ToTime(X509_CRL_get0_nextUpdate(state->crl));
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(state->crl);
  state->count = revoked ? sk_X509_REVOKED_num(revoked) : 0;
  return std::shared_ptr<const State>(std::move(state));
}

absl::StatusOr<bool> RevocationList::ReloadIfChanged() {
  if (crl_file_.empty()) return false;
  auto stamp = Stamp(crl_file_);
  if (!stamp.ok()) return stamp.status();
  const std::string key =
      absl::StrCat(stamp->mtime_ns, "/", stamp->size, "/", stamp->inode);
  {
    absl::MutexLock lock(&mu_);
    if (state_ && state_->stamp == *stamp) return false;
    if (refused_stamp_ == key) return false;  // reported already
  }
  auto state = Read();
  absl::MutexLock lock(&mu_);
  if (!state.ok()) {
    refused_stamp_ = key;
    return state.status();
  }
  refused_stamp_.clear();
  state_ = *std::move(state);
  ++generation_;
  return true;
}

uint64_t RevocationList::generation() const {
  absl::ReaderMutexLock lock(&mu_);
  return generation_;
}

bool RevocationList::lapsed() const {
  const absl::Time now = clock_ ? clock_->Now() : absl::Now();
  absl::ReaderMutexLock lock(&mu_);
  return state_ != nullptr && now > state_->next_update;
}

absl::Status RevocationList::Check(absl::string_view peer_pem) const {
  uint64_t generation = 0;
  return Check(peer_pem, &generation);
}

absl::Status RevocationList::Check(absl::string_view peer_pem,
                                   uint64_t* generation) const {
  // Held for reading while the verdict is found or computed: a reload waits
  // for the checks under the CRL it replaces.
  absl::ReaderMutexLock lock(&mu_);
  *generation = generation_;
  const State* state = state_.get();
  if (state == nullptr || state->crl == nullptr) return absl::OkStatus();
  // A lapsed CRL refuses everyone, whatever was cached while it was current.
  const absl::Time now = clock_ ? clock_->Now() : absl::Now();
  if (now > state->next_update) {
    return absl::UnavailableError(
        absl::StrCat("the partnership CRL ", crl_file_, " lapsed at ",
                     absl::FormatTime(state->next_update, absl::UTCTimeZone()),
                     "; no call is accepted until the CA re-signs it "
                     "(deploy/pki/revoke.sh)"));
  }
  std::optional<VerdictCache::Verdict> verdict = state->cache.Find(peer_pem);
  if (!verdict.has_value()) {
    BioPtr bio = MemBio(peer_pem);
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) {
      // The check may run on a TLS handshake thread, whose OpenSSL error
      // queue belongs to gRPC.
      ERR_clear_error();
      return absl::UnauthenticatedError(
          "the peer certificate could not be read for the revocation check");
    }
    X509_REVOKED* entry = nullptr;
    verdict.emplace();
    if (X509_CRL_get0_by_cert(state->crl, &entry, cert.get()) == 1) {
      verdict->revoked = true;
      verdict->serial = SerialHex(X509_get0_serialNumber(cert.get()));
    }
    state->cache.Insert(peer_pem, *verdict);
  }
  if (verdict->revoked) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate (serial ", verdict->serial,
                     ") has been revoked by the partnership CA"));
  }
  return absl::OkStatus();
}

absl::Status RevocationList::CheckPeer(const grpc::AuthContext& auth) const {
  if (!auth.IsPeerAuthenticated()) return absl::OkStatus();
  const auto pem = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) {
    if (!configured()) return absl::OkStatus();
    return absl::UnauthenticatedError(
        "the peer certificate is not available for the revocation check");
  }
  return Check(absl::string_view(pem[0].data(), pem[0].size()));
}

absl::Time RevocationList::next_update() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_ ? state_->next_update : absl::InfiniteFuture();
}

size_t RevocationList::revoked_count() const {
  absl::MutexLock lock(&mu_);
  return state_ ? state_->count : 0;
}

size_t RevocationList::cached_count() const {
  absl::MutexLock lock(&mu_);
  return state_ ? state_->cache.size() : 0;
}

}  // namespace accord
