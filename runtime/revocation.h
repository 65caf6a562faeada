// Certificate revocation: the partnership CA's CRL, checked on every call.
//
// Every mTLS port (the gateway's, the agents' holder and local APIs) checks
// the peer certificate of each call against the CRL before any other work, so
// a revoked certificate is refused at its first call and, at the gateway, the
// refusal is written to the audit log like any other denial. (A refusal during
// the TLS handshake could not be audited: no call exists yet.) The channels
// Accord opens check their server's certificate against the same list at
// the handshake instead (runtime/server_channel.h): a refused server is told
// nothing, and the caller is told why.
//
// The CRL file is re-read when it changes on disk (ReloadIfChanged, polled by
// the servers), so `deploy/pki/revoke.sh` takes effect without a restart. A
// new CRL is accepted only when the partnership CA's signature on it verifies;
// otherwise the previous one stays in force and the error is reported.
//
// Parsing a certificate costs about 100 us (OpenSSL 3's decoder), more than
// the rest of a call, so each verdict is cached by the certificate's exact PEM
// bytes: a bounded cache that belongs to the CRL it was computed against, so
// that a reload starts with an empty one. The nextUpdate lapse rule is applied
// on every call, before the cache.
//
// Thread-safe: Check may run on any number of threads while a reload swaps
// the list atomically. The cache is split into shards, each with its own
// reader/writer lock, so concurrent calls rarely wait for one another.
#ifndef ACCORD_RUNTIME_REVOCATION_H_
#define ACCORD_RUNTIME_REVOCATION_H_

#include <grpcpp/security/auth_context.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/clock.h"

namespace accord {

class RevocationList {
 public:
  // Verdicts kept per CRL: far more than the certificates of a partnership.
  static constexpr size_t kDefaultCachedCertificates = 1024;

  // Loads `crl_file` (PEM) and verifies it against the CA certificates in
  // `ca_file`. An empty `crl_file` means no CRL is configured: nothing is
  // revoked. `clock` (default: the system clock) decides when the CRL has
  // lapsed. At most `cached_certificates` verdicts are cached (0: none, every
  // check parses the certificate).
  static absl::StatusOr<std::unique_ptr<RevocationList>> Load(
      const std::string& crl_file, const std::string& ca_file,
      const Clock* clock = nullptr,
      size_t cached_certificates = kDefaultCachedCertificates);

  ~RevocationList();
  RevocationList(const RevocationList&) = delete;
  RevocationList& operator=(const RevocationList&) = delete;

  // Re-reads the CRL when its modification time or size changed. Returns
  // true when a new list was installed; an error (naming the file) when the
  // new file is unreadable or not signed by the CA, in which case the
  // previous list stays in force.
  absl::StatusOr<bool> ReloadIfChanged();

  // OK unless the PEM certificate `peer_pem` is revoked (PermissionDenied
  // naming its serial) or cannot be parsed (Unauthenticated). Once the CRL's
  // nextUpdate has passed every certificate is refused (Unavailable saying
  // the CRL must be re-signed): a lapsed CRL could hide a revocation.
  absl::Status Check(absl::string_view peer_pem) const;
  // As above; `*generation` is set to the generation() of the list the
  // certificate was checked against.
  absl::Status Check(absl::string_view peer_pem, uint64_t* generation) const;

  // Check() on the peer certificate of an authenticated call. A call with no
  // peer certificate is left to the identity checks (runtime/identity.h).
  absl::Status CheckPeer(const grpc::AuthContext& auth) const;

  bool configured() const { return !crl_file_.empty(); }
  const std::string& crl_file() const { return crl_file_; }
  // The CRL's nextUpdate; absl::InfiniteFuture() when there is no CRL.
  absl::Time next_update() const;
  size_t revoked_count() const;
  // Verdicts cached for the CRL in force (for tests and metrics).
  size_t cached_count() const;
  // Changes (grows) every time a new list is installed, so that holders of
  // earlier verdicts, such as channels to servers (runtime/server_channel.h),
  // know to check again.
  uint64_t generation() const;
  // Whether the list in force has lapsed (its nextUpdate has passed).
  bool lapsed() const;

 private:
  struct State;
  class VerdictCache;
  RevocationList(std::string crl_file, std::string ca_file, const Clock* clock,
                 size_t cached_certificates);
  absl::StatusOr<std::shared_ptr<const State>> Read() const;

  const std::string crl_file_;
  const std::string ca_file_;
  const Clock* clock_;
  const size_t cached_certificates_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const State> state_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  // The file version last refused, so a bad file is reported once.
  std::string refused_stamp_ ABSL_GUARDED_BY(mu_);
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_REVOCATION_H_
