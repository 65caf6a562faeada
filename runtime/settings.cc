#include "runtime/settings.h"

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

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/crypto.h"
#include "runtime/spiffe.h"
#include "runtime/textproto.h"

namespace accord {
namespace {

constexpr int kMaxPort = 65535;
// google.protobuf.Duration's own range.
constexpr int64_t kMaxDurationSeconds = 315576000000;

// The allowed ranges (also documented in config.proto).
constexpr absl::Duration kMaxGroupCommitDelay = absl::Seconds(1);
constexpr uint32_t kMaxGroupCommitBatch = 65536;
constexpr absl::Duration kMinHolderDeadline = absl::Milliseconds(10);
constexpr absl::Duration kMaxHolderDeadline = absl::Minutes(5);
constexpr absl::Duration kMinBackoff = absl::Milliseconds(10);
constexpr absl::Duration kMaxInitialBackoff = absl::Hours(1);
constexpr absl::Duration kMaxBackoff = absl::Hours(24);
constexpr uint32_t kMaxRequestsPerSecond = 100000;
constexpr uint32_t kMaxBurst = 1000000;
constexpr uint32_t kMaxInFlight = 100000;
constexpr uint64_t kMaxFreeDiskFloorMb = uint64_t{1} << 20;  // 1 TiB

// Collects every error of one file, each "file:line:col: field <path> ...".
class Checker {
 public:
  explicit Checker(const TextLocations& at) : at_(at) {}

  std::string Field(absl::string_view path) const {
    return absl::StrCat(at_.Where(path), ": field ", path);
  }
  // `what` follows the field's path: "is 0; ..." or ": <file>: ...".
  void Error(absl::string_view path, absl::string_view what) {
    errors_.push_back(absl::StrCat(Field(path),
                                   absl::StartsWith(what, ":") ? "" : " ",
                                   what));
  }
  void Add(const absl::Status& s) {
    if (!s.ok()) errors_.emplace_back(s.message());
  }
  bool Has(absl::string_view path) const { return at_.Has(path); }

  // A duration written in the file (`present`), within [min, max].
  std::optional<absl::Duration> Duration(absl::string_view path, bool present,
                                         const google::protobuf::Duration& d,
                                         absl::Duration min,
                                         absl::Duration max) {
    if (!present) return std::nullopt;
    const bool well_formed =
        d.seconds() >= -kMaxDurationSeconds &&
        d.seconds() <= kMaxDurationSeconds && d.nanos() > -1000000000 &&
        d.nanos() < 1000000000 && !(d.seconds() > 0 && d.nanos() < 0) &&
        !(d.seconds() < 0 && d.nanos() > 0);
    const absl::Duration v =
        absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    if (!well_formed || v < min || v > max) {
      Error(path, absl::StrCat(
                      "is ",
                      well_formed ? absl::FormatDuration(v)
                                  : absl::StrCat(d.seconds(), "s ", d.nanos(),
                                                 "ns (not a valid duration)"),
                      "; it must be from ", absl::FormatDuration(min), " to ",
                      absl::FormatDuration(max)));
      return std::nullopt;
    }
    return v;
  }

  // A rate written in the file, within [min, max]; 0 when left out.
  double Rate(absl::string_view path, double v, double min, double max) {
    if (!Has(path)) return 0;
    if (!(v >= min && v <= max)) {
      Error(path, absl::StrCat("is ", v, "; it must be from ", min, " to ",
                               max, " a second"));
      return 0;
    }
    return v;
  }

  // A count written in the file, within [min, max]; 0 when left out.
  uint32_t Count(absl::string_view path, uint32_t v, uint32_t min,
                 uint32_t max) {
    if (!Has(path)) return 0;
    if (v < min || v > max) {
      Error(path, absl::StrCat("is ", v, "; it must be from ", min, " to ",
                               max));
      return 0;
    }
    return v;
  }

  void Address(absl::string_view path, const std::string& address,
               int min_port) {
    Add(CheckHostPort(address, min_port, Field(path)));
  }

  absl::Status Result() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  const TextLocations& at_;
  std::vector<std::string> errors_;
};

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// The first PEM object `read` finds in the file `path` (the field `field`),
// or null after reporting why not.
template <typename Read>
auto ReadPem(Checker& check, absl::string_view field, const std::string& path,
             absl::string_view what, Read read) -> decltype(read(nullptr)) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    check.Error(field, absl::StrCat(": ", text.status().message()));
    return nullptr;
  }
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  auto object = read(bio.get());
  if (object == nullptr) {
    check.Error(field, absl::StrCat(": ", path, ": no PEM ", what, " found"));
  }
  return object;
}

// The URI SANs of a certificate.
std::vector<std::string> UriSans(X509* cert) {
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

// Checks the TLS files of a process that must hold `identity` (`holder`
// says who that is, e.g. "the gateway").
void CheckTls(Checker& check, const accord::v1::TlsFiles& tls,
              const std::string& identity, const std::string& holder) {
  // OpenSSL keeps errors in a per-thread queue; leave it as found.
  struct ClearErrors {
    ~ClearErrors() { ERR_clear_error(); }
  } clear;
  if (auto ca = ReadFile(tls.ca_file()); !ca.ok()) {
    check.Error("tls.ca_file", absl::StrCat(": ", ca.status().message()));
  } else if (ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    check.Error("tls.ca_file",
                absl::StrCat(": ", tls.ca_file(), ": no PEM certificate found"));
  }

  std::unique_ptr<X509, X509Deleter> cert(ReadPem(
      check, "tls.cert_file", tls.cert_file(), "certificate",
      [](BIO* bio) { return PEM_read_bio_X509(bio, nullptr, nullptr, nullptr); }));
  if (cert != nullptr) {
    const std::vector<std::string> uris = UriSans(cert.get());
    if (uris.size() != 1 || uris[0] != identity) {
      check.Error(
          "tls.cert_file",
          absl::StrCat(": ", tls.cert_file(), " carries the identity ",
                       uris.empty() ? "(none)" : absl::StrJoin(uris, ", "),
                       "; ", holder, " must hold ", identity));
    }
  }

  std::unique_ptr<EVP_PKEY, KeyDeleter> key;
  if (auto s = CheckSecretFilePermissions(tls.key_file()); !s.ok()) {
    check.Error("tls.key_file", absl::StrCat(": ", s.message()));
  } else {
    key.reset(ReadPem(check, "tls.key_file", tls.key_file(), "private key",
                      [](BIO* bio) {
                        return PEM_read_bio_PrivateKey(bio, nullptr, nullptr,
                                                       nullptr);
                      }));
  }
  if (cert != nullptr && key != nullptr &&
      X509_check_private_key(cert.get(), key.get()) != 1) {
    check.Error("tls.key_file",
                absl::StrCat(": ", tls.key_file(),
                             " is not the private key of the certificate ",
                             tls.cert_file(),
                             " (every TLS handshake would fail)"));
  }

  if (tls.crl_file().empty()) {
    if (!tls.allow_no_crl()) {
      check.Error("tls.crl_file",
                  "is required: without the partnership CRL revoked "
                  "certificates are accepted (to run without one, say "
                  "allow_no_crl: true)");
    }
  } else if (tls.allow_no_crl()) {
    check.Error("tls.allow_no_crl",
                "cannot be set together with tls.crl_file: give one");
  } else {
    struct stat st;
    if (stat(tls.crl_file().c_str(), &st) != 0) {
      check.Error("tls.crl_file", absl::StrCat(": ", tls.crl_file(), ": ",
                                               std::strerror(errno)));
    }
  }
}

// Reads `config_file` into `config` (`at`: where its fields are), then the
// partnership file and the agreement files it names, as both programs do.
template <typename Config, typename Settings>
absl::Status LoadCommon(const std::string& config_file, Config* config,
                        TextLocations* at, Settings* out) {
  if (auto s = LoadTextProto(config_file, config, at); !s.ok()) return s;
  out->partnership_file = ResolvePath(config_file, config->partnership_file());
  auto partnership = PartnershipDirectory::Load(out->partnership_file);
  if (!partnership.ok()) return partnership.status();
  out->partnership = *std::move(partnership);
  for (const auto& f : config->agreement_files())
    out->agreement_files.push_back(ResolvePath(config_file, f));
  return absl::OkStatus();
}

}  // namespace

accord::v1::TlsFiles ResolveTlsFiles(const std::string& config_file,
                                     accord::v1::TlsFiles files) {
  files.set_ca_file(ResolvePath(config_file, files.ca_file()));
  files.set_cert_file(ResolvePath(config_file, files.cert_file()));
  files.set_key_file(ResolvePath(config_file, files.key_file()));
  if (!files.crl_file().empty())
    files.set_crl_file(ResolvePath(config_file, files.crl_file()));
  return files;
}

absl::Status CheckHostPort(absl::string_view address, int min_port,
                           absl::string_view where) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " \"", address, "\" ", why));
  };
  const std::string range =
      absl::StrCat("the port must be from ", min_port, " to ", kMaxPort);
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return bad(absl::StrCat("must be host:port; ", range));
  }
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  const bool bracketed = host.front() == '[';
  if (bracketed ? (host.size() < 3 || host.back() != ']')
                : host.find(':') != absl::string_view::npos) {
    return bad("must be host:port, an IPv6 host in brackets ([::1]:port)");
  }
  for (char c : host) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return bad("has a space or control character in its host");
    }
  }
  int number = -1;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(port, &number)) {
    return bad(absl::StrCat("has no port number; ", range));
  }
  if (number < min_port || number > kMaxPort) {
    return bad(absl::StrCat("has port ", number, ", out of range: ", range));
  }
  return absl::OkStatus();
}

absl::StatusOr<GatewaySettings> LoadGatewaySettings(
    const std::string& config_file) {
  accord::v1::GatewayConfig config;
  TextLocations at;
  GatewaySettings out;
  if (auto s = LoadCommon(config_file, &config, &at, &out); !s.ok()) return s;

  Checker check(at);
  check.Address("listen_address", config.listen_address(), 0);
  out.listen_address = config.listen_address();
  out.tls = ResolveTlsFiles(config_file, config.tls());
  CheckTls(check, out.tls,
           SpiffeId(out.partnership->id(), PrincipalKind::kGateway),
           "the gateway");
  out.audit_db = ResolvePath(config_file, config.audit_db());
  out.audit_signing_key_file =
      ResolvePath(config_file, config.audit_signing_key_file());
  out.server_limits = config.server_limits();

  const auto& group = config.group_commit();
  out.group_commit_max_delay =
      check.Duration("group_commit.max_delay", group.has_max_delay(),
                     group.max_delay(), absl::ZeroDuration(),
                     kMaxGroupCommitDelay);
  if (check.Has("group_commit.max_batch")) {
    out.group_commit_max_batch = check.Count(
        "group_commit.max_batch", group.max_batch(), 1, kMaxGroupCommitBatch);
  }
  out.holder_deadline = check.Duration(
      "holder_deadline", config.has_holder_deadline(),
      config.holder_deadline(), kMinHolderDeadline, kMaxHolderDeadline);
  out.referral_db = ResolvePath(config_file, config.referral_db().empty()
                                                 ? "state/gateway-referrals.db"
                                                 : config.referral_db());

  const auto& limit = config.rate_limit();
  out.rate_limit.set_requests_per_second(
      check.Count("rate_limit.requests_per_second",
                  limit.requests_per_second(), 1, kMaxRequestsPerSecond));
  out.rate_limit.set_burst(
      check.Count("rate_limit.burst", limit.burst(), 1, kMaxBurst));
  out.rate_limit.set_max_in_flight(check.Count(
      "rate_limit.max_in_flight", limit.max_in_flight(), 1, kMaxInFlight));

  const auto& delivery = config.referral_delivery();
  out.referral_initial_backoff = check.Duration(
      "referral_delivery.initial_backoff", delivery.has_initial_backoff(),
      delivery.initial_backoff(), kMinBackoff, kMaxInitialBackoff);
  out.referral_max_backoff = check.Duration(
      "referral_delivery.max_backoff", delivery.has_max_backoff(),
      delivery.max_backoff(),
      out.referral_initial_backoff.value_or(kMinBackoff), kMaxBackoff);

  const auto& refusal = config.refusal_audit();
  auto& r = out.refusal_audit;
  r.set_per_key_per_second(check.Rate("refusal_audit.per_key_per_second",
                                      refusal.per_key_per_second(), 0.01,
                                      kMaxRequestsPerSecond));
  r.set_per_key_burst(check.Count("refusal_audit.per_key_burst",
                                  refusal.per_key_burst(), 1, kMaxBurst));
  r.set_total_per_second(check.Rate("refusal_audit.total_per_second",
                                    refusal.total_per_second(), 0.01,
                                    kMaxRequestsPerSecond));
  r.set_total_burst(check.Count("refusal_audit.total_burst",
                                refusal.total_burst(), 1, kMaxBurst));
  r.set_admitted_per_key_per_second(
      check.Rate("refusal_audit.admitted_per_key_per_second",
                 refusal.admitted_per_key_per_second(), 0.01,
                 kMaxRequestsPerSecond));
  r.set_admitted_per_key_burst(check.Count("refusal_audit.admitted_per_key_burst",
                                           refusal.admitted_per_key_burst(), 1,
                                           kMaxBurst));
  r.set_admitted_total_per_second(
      check.Rate("refusal_audit.admitted_total_per_second",
                 refusal.admitted_total_per_second(), 0.01,
                 kMaxRequestsPerSecond));
  r.set_admitted_total_burst(check.Count("refusal_audit.admitted_total_burst",
                                         refusal.admitted_total_burst(), 1,
                                         kMaxBurst));
  if (auto interval = check.Duration(
          "refusal_audit.summary_interval", refusal.has_summary_interval(),
          refusal.summary_interval(), absl::Milliseconds(100), absl::Hours(1))) {
    *r.mutable_summary_interval() = refusal.summary_interval();
  }
  if (config.has_min_free_disk_mb()) {
    if (config.min_free_disk_mb() > kMaxFreeDiskFloorMb) {
      check.Error("min_free_disk_mb",
                  absl::StrCat("is ", config.min_free_disk_mb(),
                               "; it must be from 0 (no floor) to ",
                               kMaxFreeDiskFloorMb));
    } else {
      out.min_free_disk_mb = config.min_free_disk_mb();
    }
  }
  out.server_limits = config.server_limits();
  out.max_concurrent_exports = check.Count(
      "max_concurrent_exports", config.max_concurrent_exports(), 1, 64);

  if (auto s = check.Result(); !s.ok()) return s;
  return out;
}

absl::StatusOr<AgentSettings> LoadAgentSettings(
    const std::string& config_file) {
  accord::v1::AgentConfig config;
  TextLocations at;
  AgentSettings out;
  if (auto s = LoadCommon(config_file, &config, &at, &out); !s.ok()) return s;
  out.org_id = config.org_id();

  Checker check(at);
  if (out.partnership->FindOrg(out.org_id) == nullptr) {
    check.Error("org_id", absl::StrCat("'", out.org_id,
                                       "' is not an organisation of the "
                                       "partnership ",
                                       out.partnership_file));
  }
  check.Address("holder_listen_address", config.holder_listen_address(), 0);
  check.Address("local_listen_address", config.local_listen_address(), 0);
  if (config.holder_listen_address() == config.local_listen_address()) {
    check.Error("local_listen_address",
                "is the holder API's address too; each API needs its own");
  }
  out.holder_listen_address = config.holder_listen_address();
  out.local_listen_address = config.local_listen_address();
  if (!config.gateway_address().empty())
    check.Address("gateway_address", config.gateway_address(), 1);
  out.gateway_address = config.gateway_address();
  out.tls = ResolveTlsFiles(config_file, config.tls());
  CheckTls(check, out.tls,
           SpiffeId(out.partnership->id(), PrincipalKind::kAgent, out.org_id),
           absl::StrCat("the agent of ", out.org_id));
  out.store_db = ResolvePath(config_file, config.store_db());
  out.audit_db = ResolvePath(config_file, config.audit_db());
  out.audit_signing_key_file =
      ResolvePath(config_file, config.audit_signing_key_file());
  out.server_limits = config.server_limits();
  out.linkage_key_file = ResolvePath(config_file, config.linkage_key_file());
  out.pseudonym_key_file =
      ResolvePath(config_file, config.pseudonym_key_file());
  if (!config.referral_key_file().empty())
    out.referral_key_file = ResolvePath(config_file, config.referral_key_file());

  if (auto s = check.Result(); !s.ok()) return s;
  return out;
}

}  // namespace accord
