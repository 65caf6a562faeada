#include "gateway/handshake_audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace accord::gateway {

HandshakeAudit::HandshakeAudit(audit::AuditLog* audit, const Clock* clock,
                               HandshakeAuditOptions options,
                               std::string log_prefix)
    : audit_(audit),
      log_prefix_(std::move(log_prefix)),
      limiter_(options.per_second, options.burst, clock) {}

accord::v1::AuditEntry HandshakeAudit::Entry(const HandshakeRefusal& refusal,
                                             uint64_t left_out) {
  accord::v1::AuditEntry e;
  // Never the bare identity: a refused certificate proves nothing, and a
  // search for an organisation's identity must not find what someone else
  // claimed to be.
  if (!refusal.claimed_identity.empty()) {
    e.set_caller(absl::StrCat("unverified:", refusal.claimed_identity));
  } else if (!refusal.fingerprint.empty()) {
    e.set_caller(absl::StrCat("sha256:", refusal.fingerprint));
  } else {
    e.set_caller("unknown");
  }
  e.set_method(kHandshakeMethod);
  e.set_decision(accord::v1::AUDIT_DECISION_DENY);
  e.set_deny_reason(refusal.reason);
  std::string detail = "certificate presented, unverified:";
  if (!refusal.claimed_subject.empty())
    absl::StrAppend(&detail, " subject ", refusal.claimed_subject, ";");
  if (!refusal.fingerprint.empty())
    absl::StrAppend(&detail, " sha256 ", refusal.fingerprint, ";");
  if (!refusal.peer_address.empty())
    absl::StrAppend(&detail, " from ", refusal.peer_address, ";");
  if (left_out > 0) {
    absl::StrAppend(&detail, " ", left_out,
                    " earlier handshake refusals not audited (rate limit);");
  }
  detail.pop_back();  // the last ';' or ':'
  e.set_detail(std::move(detail));
  return e;
}

void HandshakeAudit::Record(const HandshakeRefusal& refusal) {
  absl::ReaderMutexLock lock(&mu_);
  if (stopped_) return;
  const auto left_out = limiter_.Admit();
  if (!left_out.has_value()) return;
  std::string line = DescribeRefusal(refusal);
  if (*left_out > 0) {
    absl::StrAppend(&line, "; ", *left_out,
                    " earlier handshake refusals not audited (rate limit)");
  }
  std::fprintf(stderr, "%s: %s\n", log_prefix_.c_str(), line.c_str());
  audit_->Append(Entry(refusal, *left_out), [prefix = log_prefix_](
                                                absl::StatusOr<uint64_t> seq) {
    if (!seq.ok()) {
      std::fprintf(stderr, "%s: handshake refusal not audited: %s\n",
                   prefix.c_str(), std::string(seq.status().message()).c_str());
    }
  });
}

void HandshakeAudit::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace accord::gateway
