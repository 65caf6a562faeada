#include "runtime/handshake.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/crypto.h"

namespace accord {
namespace {

constexpr size_t kMaxClaimBytes = 256;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using StorePtr = std::unique_ptr<X509_STORE, StoreDeleter>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter>;
using StackPtr = std::unique_ptr<STACK_OF(X509), StackDeleter>;

// OpenSSL keeps errors in a per-thread queue; the handshake threads belong
// to gRPC's TLS code, which must not find our leftovers there.
struct ClearOpenSslErrors {
  ~ClearOpenSslErrors() { ERR_clear_error(); }
};

BioPtr MemBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// Every PEM certificate in `pem`, in order.
std::vector<X509Ptr> ParseCertificates(absl::string_view pem) {
  std::vector<X509Ptr> out;
  if (pem.empty()) return out;
  BioPtr bio = MemBio(pem);
  if (!bio) return out;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(raw);
  }
  return out;
}

std::string FileStamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/",
                      st.st_size, "/", st.st_ino);
}

std::string Subject(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "";
  if (X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                         XN_FLAG_RFC2253) < 0) {
    return "";
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return "";
  return PrintableClaim(absl::string_view(data, static_cast<size_t>(len)));
}

std::string UriSans(X509* cert) {
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return "";
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.push_back(PrintableClaim(absl::string_view(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
        static_cast<size_t>(ASN1_STRING_length(uri)))));
  }
  GENERAL_NAMES_free(names);
  return PrintableClaim(absl::StrJoin(uris, ","));
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return "";
  return HexEncode(absl::string_view(reinterpret_cast<const char*>(md), len));
}

std::string Rfc3339(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "(unreadable)";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromTM(tm, absl::UTCTimeZone()),
                          absl::UTCTimeZone());
}

// The reason for OpenSSL's verification error `err` at chain depth `depth`
// (0: the presented certificate, above: a CA certificate of its chain).
std::string ReasonFor(int err, int depth, X509* at) {
  const std::string which =
      depth == 0 ? "certificate" : "issuing CA certificate";
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return absl::StrCat(which, " expired at ",
                          Rfc3339(at ? X509_get0_notAfter(at) : nullptr));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return absl::StrCat(which, " not valid before ",
                          Rfc3339(at ? X509_get0_notBefore(at) : nullptr));
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return absl::StrCat(which, " has unreadable validity dates");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return absl::StrCat(
          "unknown CA: certificate not issued by the partnership CA (",
          X509_verify_cert_error_string(err), ")");
    case X509_V_ERR_INVALID_PURPOSE:
      return "no clientAuth usage: certificate not issued for client "
             "authentication";
    default:
      return absl::StrCat("certificate verification failed at depth ", depth,
                          ": ", X509_verify_cert_error_string(err));
  }
}

}  // namespace

std::string PrintableClaim(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxClaimBytes) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

std::string DescribeRefusal(const HandshakeRefusal& r) {
  std::string out = absl::StrCat("TLS handshake refused: ", r.reason);
  std::vector<std::string> claims;
  if (!r.claimed_identity.empty())
    claims.push_back(absl::StrCat("identity ", r.claimed_identity));
  if (!r.claimed_subject.empty())
    claims.push_back(absl::StrCat("subject ", r.claimed_subject));
  if (!r.fingerprint.empty())
    claims.push_back(absl::StrCat("sha256 ", r.fingerprint));
  if (!r.peer_address.empty())
    claims.push_back(absl::StrCat("from ", r.peer_address));
  if (!claims.empty()) {
    absl::StrAppend(&out, " (certificate presented, unverified: ",
                    absl::StrJoin(claims, "; "), ")");
  }
  return out;
}

// --- ClientCertificateVerifier ---------------------------------------------

struct ClientCertificateVerifier::Bundle {
  StorePtr store;
  std::string stamp;
};

ClientCertificateVerifier::ClientCertificateVerifier(std::string ca_file,
                                                     const Clock* clock)
    : ca_file_(std::move(ca_file)), clock_(clock) {}

ClientCertificateVerifier::~ClientCertificateVerifier() = default;

absl::StatusOr<std::unique_ptr<ClientCertificateVerifier>>
ClientCertificateVerifier::Create(std::string ca_file, const Clock* clock) {
  std::unique_ptr<ClientCertificateVerifier> v(
      new ClientCertificateVerifier(std::move(ca_file), clock));
  auto bundle = v->Read();
  if (!bundle.ok()) return bundle.status();
  absl::MutexLock lock(&v->mu_);
  v->bundle_ = *std::move(bundle);
  v->last_check_ = clock ? clock->Now() : absl::Now();
  return v;
}

absl::StatusOr<std::shared_ptr<const ClientCertificateVerifier::Bundle>>
ClientCertificateVerifier::Read() const {
  ClearOpenSslErrors clear;
  // The stamp is taken before reading, so a change during the read is seen
  // again at the next check.
  std::string stamp = FileStamp(ca_file_);
  if (stamp.empty()) stamp = "missing";
  auto text = ReadFile(ca_file_);
  if (!text.ok()) return text.status();
  std::vector<X509Ptr> cas = ParseCertificates(*text);
  if (cas.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ca_file_, ": no PEM certificate found"));
  }
  auto bundle = std::make_shared<Bundle>();
  bundle->stamp = stamp;
  bundle->store.reset(X509_STORE_new());
  if (!bundle->store) return absl::InternalError("X509_STORE_new failed");
  for (const auto& ca : cas) {
    if (X509_STORE_add_cert(bundle->store.get(), ca.get()) != 1) {
      // A duplicate is harmless; anything else is not.
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return absl::InvalidArgumentError(
            absl::StrCat(ca_file_, ": cannot use a CA certificate"));
      }
    }
  }
  return std::shared_ptr<const Bundle>(std::move(bundle));
}

std::shared_ptr<const ClientCertificateVerifier::Bundle>
ClientCertificateVerifier::bundle() const {
  absl::MutexLock lock(&mu_);
  return bundle_;
}

absl::StatusOr<bool> ClientCertificateVerifier::ReloadIfChanged() {
  std::string stamp = FileStamp(ca_file_);
  if (stamp.empty()) stamp = "missing";
  {
    absl::MutexLock lock(&mu_);
    if (bundle_ != nullptr && stamp == bundle_->stamp) return false;
    // A bad version is reported once, not at every check.
    if (stamp == refused_stamp_) return false;
  }
  auto bundle = Read();
  absl::MutexLock lock(&mu_);
  if (!bundle.ok()) {
    refused_stamp_ = stamp;
    return bundle.status();
  }
  bundle_ = *std::move(bundle);
  refused_stamp_.clear();
  return true;
}

absl::StatusOr<bool> ClientCertificateVerifier::ReloadIfDue(
    absl::Duration interval) {
  const absl::Time now = clock_ ? clock_->Now() : absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (now - last_check_ < interval) return false;
    last_check_ = now;
  }
  return ReloadIfChanged();
}

std::optional<HandshakeRefusal> ClientCertificateVerifier::Verify(
    absl::string_view leaf_pem, absl::string_view chain_pem) const {
  ClearOpenSslErrors clear;
  HandshakeRefusal refusal;
  auto refuse = [&](std::string reason) {
    refusal.reason = std::move(reason);
    return std::optional<HandshakeRefusal>(std::move(refusal));
  };
  if (leaf_pem.empty()) return refuse("no client certificate presented");
  std::vector<X509Ptr> leaves = ParseCertificates(leaf_pem);
  if (leaves.empty()) {
    return refuse("the presented certificate cannot be parsed");
  }
  X509* leaf = leaves.front().get();
  refusal.fingerprint = Fingerprint(leaf);
  refusal.claimed_subject = Subject(leaf);
  refusal.claimed_identity = UriSans(leaf);

  std::shared_ptr<const Bundle> trusted = bundle();
  if (trusted == nullptr || !trusted->store) {
    return refuse("no partnership CA is loaded");
  }
  // Presented intermediates may help build the chain; only the bundle can
  // end it.
  StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return refuse("out of memory verifying the certificate");
  for (auto& cert : ParseCertificates(chain_pem)) {
    if (X509_cmp(cert.get(), leaf) == 0) continue;
    if (sk_X509_push(untrusted.get(), cert.get()) <= 0) {
      return refuse("out of memory verifying the certificate");
    }
    cert.release();  // owned by the stack now
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), trusted->store.get(), leaf,
                                  untrusted.get()) != 1) {
    return refuse("cannot start certificate verification");
  }
  if (X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT) != 1) {
    return refuse("cannot set the client-authentication purpose");
  }
  const absl::Time now = clock_ ? clock_->Now() : absl::Now();
  X509_STORE_CTX_set_time(ctx.get(), 0,
                          static_cast<time_t>(absl::ToUnixSeconds(now)));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
    return refuse(ReasonFor(err == X509_V_OK ? X509_V_ERR_UNSPECIFIED : err,
                            depth, at ? at : leaf));
  }
  // The purpose check accepts a certificate with no extended key usage at
  // all; every partnership certificate names its usages, so require
  // clientAuth explicitly.
  const uint32_t flags = X509_get_extension_flags(leaf);
  if ((flags & EXFLAG_XKUSAGE) == 0 ||
      (X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) == 0) {
    return refuse(
        "no clientAuth usage: certificate not issued for client "
        "authentication");
  }
  return std::nullopt;
}

// --- RefusalRateLimiter ------------------------------------------------------

RefusalRateLimiter::RefusalRateLimiter(double per_second, double burst,
                                       const Clock* clock)
    : per_second_(per_second),
      burst_(std::max(1.0, burst)),
      clock_(clock),
      tokens_(std::max(1.0, burst)),
      last_(clock ? clock->Now() : absl::Now()) {}

std::optional<uint64_t> RefusalRateLimiter::Admit() {
  const absl::Time now = clock_ ? clock_->Now() : absl::Now();
  absl::MutexLock lock(&mu_);
  if (now > last_) {
    tokens_ = std::min(
        burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * per_second_);
    last_ = now;
  }
  if (tokens_ < 1.0) {
    ++suppressed_;
    return std::nullopt;
  }
  tokens_ -= 1.0;
  const uint64_t left_out = suppressed_;
  suppressed_ = 0;
  return left_out;
}

uint64_t RefusalRateLimiter::suppressed() const {
  absl::MutexLock lock(&mu_);
  return suppressed_;
}

}  // namespace accord
