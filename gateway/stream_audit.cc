#include "gateway/stream_audit.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/identity.h"

namespace accord::gateway {

StreamAudit::StreamAudit(audit::AuditLog* audit, std::string partnership,
                         std::string log_prefix)
    : audit_(audit),
      partnership_(std::move(partnership)),
      log_prefix_(std::move(log_prefix)) {}

accord::v1::AuditEntry StreamAudit::BaseEntry(
    const std::string& identity) const {
  accord::v1::AuditEntry e;
  e.set_caller(identity.empty() ? "unknown" : identity);
  auto principal = ParseSpiffeId(identity);
  if (principal.ok() && principal->partnership == partnership_ &&
      principal->kind == PrincipalKind::kOrg) {
    e.set_caller_org(principal->name);
  }
  e.set_method(kHttp2ConnectionMethod);
  e.set_decision(accord::v1::AUDIT_DECISION_DENY);
  return e;
}

accord::v1::AuditEntry StreamAudit::ClosureEntry(
    const ConnectionClosure& closure) const {
  accord::v1::AuditEntry e = BaseEntry(closure.identity);
  e.set_deny_reason(absl::StrCat("connection closed: ", closure.reason));
  std::string detail = absl::StrCat("from ", closure.peer);
  if (!closure.certificate_sha256.empty()) {
    absl::StrAppend(&detail, "; certificate sha256 ",
                    closure.certificate_sha256);
  }
  e.set_detail(std::move(detail));
  return e;
}

accord::v1::AuditEntry StreamAudit::SummaryEntry(
    const StreamChurnSummary& summary) const {
  accord::v1::AuditEntry e = BaseEntry(summary.identity);
  e.set_deny_reason(
      absl::StrCat(summary.closures, " connections closed for stream churn"));
  e.set_detail(absl::StrFormat(
      "%d streams reset by the client and %d connections closed in %.1f s "
      "(the first closure audited on its own)",
      summary.resets, summary.closures, absl::ToDoubleSeconds(summary.period)));
  return e;
}

void StreamAudit::RecordClosure(const ConnectionClosure& closure) {
  std::fprintf(stderr, "%s: %s\n", log_prefix_.c_str(),
               DescribeClosure(closure).c_str());
  Append(ClosureEntry(closure));
}

void StreamAudit::RecordSummary(const StreamChurnSummary& summary) {
  std::fprintf(stderr, "%s: %s\n", log_prefix_.c_str(),
               DescribeSummary(summary).c_str());
  if (summary.closures > 0) Append(SummaryEntry(summary));
}

void StreamAudit::Append(accord::v1::AuditEntry entry) {
  audit_->Append(std::move(entry), [prefix = log_prefix_](
                                       absl::StatusOr<uint64_t> seq) {
    if (!seq.ok()) {
      std::fprintf(stderr, "%s: connection closure not audited: %s\n",
                   prefix.c_str(), std::string(seq.status().message()).c_str());
    }
  });
}

}  // namespace accord::gateway
