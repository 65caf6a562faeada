// Audits client certificates the gateway refused at the TLS handshake.
//
// A refused handshake never becomes a call, so it has no method, request or
// authenticated caller; the entry records what the certificate claimed
// (marked unverified), its SHA-256 fingerprint and the reason. Anyone who can
// reach the port can cause such refusals, so they are rate-limited before
// they reach the durable log: at most `burst` at once and `per_second`
// sustained; the number left out is written into the next entry (and the
// process log), so the record says how many there were.
//
// Thread-safe: Record runs on gRPC's handshake threads and never blocks on
// I/O.
#ifndef ACCORD_GATEWAY_HANDSHAKE_AUDIT_H_
#define ACCORD_GATEWAY_HANDSHAKE_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/audit.pb.h"
#include "audit/audit_log.h"
#include "runtime/clock.h"
#include "runtime/handshake.h"

namespace accord::gateway {

// The audit entry's method for a refused handshake.
inline constexpr char kHandshakeMethod[] = "tls-handshake";

struct HandshakeAuditOptions {
  double per_second = 5;
  double burst = 20;
};

class HandshakeAudit {
 public:
  // `audit` and `clock` must outlive this object, or Stop() must be called
  // before they go. `log_prefix` starts each process-log line.
  HandshakeAudit(audit::AuditLog* audit, const Clock* clock,
                 HandshakeAuditOptions options, std::string log_prefix);

  // Records one refusal: an audit entry and a process-log line, unless over
  // the rate limit (then only counted).
  void Record(const HandshakeRefusal& refusal);

  // Record as a hook for MakeServerCredentials. The hook must not outlive
  // this object.
  HandshakeRefusalHook Hook() {
    return [this](const HandshakeRefusal& r) { Record(r); };
  }

  // From now on refusals are neither audited nor logged (the server is
  // shutting down). Returns once no Record is using the audit log.
  void Stop();

  // The entry for `refusal`, with `left_out` refusals suppressed before it.
  static accord::v1::AuditEntry Entry(const HandshakeRefusal& refusal,
                                      uint64_t left_out);

 private:
  audit::AuditLog* const audit_;
  const std::string log_prefix_;
  RefusalRateLimiter limiter_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_HANDSHAKE_AUDIT_H_
