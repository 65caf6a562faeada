// Audits what the gateway's stream guard (runtime/stream_guard.h) does about
// connections that churn HTTP/2 streams: a connection it closed, and its
// per-identity summaries. Never one entry per stream: the guard reports the
// first closure of an identity at once and the rest (closures and streams
// reset by the client) at most once per interval.
//
// Entries have method "http2-connection" and decision DENY; `caller` is the
// client certificate's URI SAN (the certificate passed the handshake, so it
// chains to the partnership CA), `caller_org` the organisation it names.
// Summaries without a closure (a client that cancels now and then) go to the
// process log only: every call the client sent a request for was audited by
// its handler already.
//
// Thread-safe; never blocks on I/O (audit appends are asynchronous).
#ifndef ACCORD_GATEWAY_STREAM_AUDIT_H_
#define ACCORD_GATEWAY_STREAM_AUDIT_H_

#include <string>

#include "accord/v1/audit.pb.h"
#include "audit/audit_log.h"
#include "runtime/stream_guard.h"

namespace accord::gateway {

inline constexpr char kHttp2ConnectionMethod[] = "http2-connection";

class StreamAudit {
 public:
  // `audit` must outlive this object. `partnership` is the trust domain
  // whose organisations `caller_org` names.
  StreamAudit(audit::AuditLog* audit, std::string partnership,
              std::string log_prefix);

  void RecordClosure(const ConnectionClosure& closure);
  void RecordSummary(const StreamChurnSummary& summary);

  // The entries, for tests.
  accord::v1::AuditEntry ClosureEntry(const ConnectionClosure& closure) const;
  accord::v1::AuditEntry SummaryEntry(const StreamChurnSummary& summary) const;

 private:
  accord::v1::AuditEntry BaseEntry(const std::string& identity) const;
  void Append(accord::v1::AuditEntry entry);

  audit::AuditLog* const audit_;
  const std::string partnership_;
  const std::string log_prefix_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_STREAM_AUDIT_H_
