// Client certificates at the TLS handshake: Accord's own verification of the
// certificate a peer presents, and what a refusal reports.
//
// Every Accord server asks gRPC for the client's certificate without letting
// OpenSSL judge it, and decides here instead, so that a refused handshake is
// something Accord sees and can record (the gateway audits it; the agents log
// it). A certificate is accepted only when it chains to a CA in the
// partnership's CA bundle, is within its validity period and carries the
// clientAuth extended key usage; everything else is refused, including
// anything that cannot be parsed. Identity checks (exactly one SPIFFE URI SAN
// of this partnership) stay per call (runtime/identity.h), where the refusal
// is audited with the method and request it belongs to.
//
// ClientCertificateVerifier is thread-safe: Verify runs on gRPC's handshake
// threads while a reload swaps the CA bundle atomically. RefusalRateLimiter
// is thread-safe.
#ifndef ACCORD_RUNTIME_HANDSHAKE_H_
#define ACCORD_RUNTIME_HANDSHAKE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/clock.h"

namespace accord {

// A handshake Accord refused. Everything but `reason` describes what the
// peer presented and is unauthenticated: a refused certificate proves
// nothing about who sent it. Strings are bounded and free of control
// characters, so they are safe to log.
struct HandshakeRefusal {
  // Why, e.g. "certificate expired at 2026-11-22T14:00:00Z", "unknown CA: ...",
  // "no clientAuth usage: ...".
  std::string reason;
  // The URI SANs the certificate claims (comma-separated); empty when none.
  std::string claimed_identity;
  // The certificate's subject (RFC 2253); empty when unparseable.
  std::string claimed_subject;
  // Lower-case hex SHA-256 of the certificate's DER encoding; empty when the
  // certificate cannot be parsed.
  std::string fingerprint;
  // The peer's address when known (gRPC 1.51 does not give it to a
  // certificate verifier, so it is empty there).
  std::string peer_address;
};

// Called once per refused handshake, on a gRPC handshake thread: must not
// block.
using HandshakeRefusalHook = std::function<void(const HandshakeRefusal&)>;

// One line for a process log: the reason, then what the certificate claims,
// marked unverified.
std::string DescribeRefusal(const HandshakeRefusal& refusal);

// Text a peer chose (a claimed identity, a subject) made safe for logs and
// messages: printable ASCII only (anything else becomes '?'), at most 256
// bytes, "..." marking a cut.
std::string PrintableClaim(absl::string_view text);

class ClientCertificateVerifier {
 public:
  // Loads the CA bundle (PEM, one or more certificates). Fails when the file
  // is unreadable or holds no certificate. `clock` (default: the system
  // clock) decides validity; it must outlive the verifier.
  static absl::StatusOr<std::unique_ptr<ClientCertificateVerifier>> Create(
      std::string ca_file, const Clock* clock = nullptr);
  ~ClientCertificateVerifier();
  ClientCertificateVerifier(const ClientCertificateVerifier&) = delete;
  ClientCertificateVerifier& operator=(const ClientCertificateVerifier&) =
      delete;

  // Verifies the PEM certificate `leaf_pem` the peer presented, with any
  // certificates in `chain_pem` as untrusted intermediates (they can help
  // build a chain, never end one). nullopt when accepted; otherwise the
  // refusal. An empty or unparseable certificate is refused.
  std::optional<HandshakeRefusal> Verify(absl::string_view leaf_pem,
                                         absl::string_view chain_pem) const;

  // Re-reads the CA bundle when its modification time, size or inode
  // changed. True when a new bundle was installed. An error (naming the
  // file) when the new file is unreadable or holds no certificate: the
  // previous bundle stays in force, as for the server's own certificates in
  // gRPC's file watcher, and the same bad version is reported only once.
  absl::StatusOr<bool> ReloadIfChanged();

  // ReloadIfChanged at most once per `interval` (by the clock); false when
  // not yet due. Called by the servers before each verification.
  absl::StatusOr<bool> ReloadIfDue(absl::Duration interval = absl::Seconds(1));

  const std::string& ca_file() const { return ca_file_; }

 private:
  struct Bundle;
  ClientCertificateVerifier(std::string ca_file, const Clock* clock);
  absl::StatusOr<std::shared_ptr<const Bundle>> Read() const;
  std::shared_ptr<const Bundle> bundle() const;

  const std::string ca_file_;
  const Clock* clock_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  std::string refused_stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Bounds how many refusals are recorded, so that anyone able to reach a port
// cannot flood a durable log with refused handshakes: a token bucket of
// `per_second` sustained and `burst` at once. Refusals over the limit are
// counted, and the count is handed to the next refusal admitted, so the
// record says how many were left out.
class RefusalRateLimiter {
 public:
  RefusalRateLimiter(double per_second, double burst, const Clock* clock);

  // When this refusal may be recorded: the number suppressed since the last
  // one admitted (0 when none). nullopt when it must be left out (counted).
  std::optional<uint64_t> Admit();

  // Refusals left out since the last one admitted.
  uint64_t suppressed() const;

 private:
  const double per_second_;
  const double burst_;
  const Clock* clock_;
  mutable absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_HANDSHAKE_H_
