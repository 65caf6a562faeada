#include "gateway/pipeline.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace accord::gateway {
namespace {

const std::string& EmptyString() {
  static const auto* empty = new std::string();
  return *empty;
}

const char* KindName(PrincipalKind k) {
  switch (k) {
    case PrincipalKind::kOrg:
      return "an organisation's system";
    case PrincipalKind::kAgent:
      return "an agent";
    case PrincipalKind::kGateway:
      return "the gateway";
    case PrincipalKind::kAuditor:
      return "an auditor";
  }
  return "unknown";
}

// Who may call, in words, for refusals: "organisations' systems and agents".
std::string AllowedCallers(uint32_t callers) {
  std::string out;
  auto add = [&](PrincipalKind k, const char* words) {
    if (!(callers & CallerBit(k))) return;
    if (!out.empty()) out += " and ";
    out += words;
  };
  add(PrincipalKind::kOrg, "organisations' systems");
  add(PrincipalKind::kAgent, "agents");
  add(PrincipalKind::kAuditor, "auditors");
  return out;
}

}  // namespace

std::string AuditText(absl::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = text[i];
    // The length of the UTF-8 sequence starting here (1 for a stray byte).
    size_t n = c < 0x80         ? 1
               : (c >> 5) == 6  ? 2
               : (c >> 4) == 14 ? 3
               : (c >> 3) == 30 ? 4
                                : 1;
    bool valid = n == 1 ? c < 0x80 : i + n <= text.size();
    for (size_t k = 1; valid && k < n; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) >> 6) == 2;
    }
    const bool control = n == 1 && (c < 0x20 || c == 0x7f);
    absl::string_view piece = valid && !control
                                  ? text.substr(i, n)
                                  : absl::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece.data(), piece.size());
    i += valid ? n : 1;
  }
  return out;
}

const std::string& Call::org_id() const {
  return org_ != nullptr ? org_->id() : EmptyString();
}

accord::v1::AuditEntry Call::Entry() const {
  accord::v1::AuditEntry e;
  e.set_caller(principal().uri);
  if (org_ != nullptr) e.set_caller_org(org_->id());
  *e.mutable_actor() = caller_.actor;
  e.set_method(method_->name);
  e.set_action(method_->action);
  return e;
}

Pipeline::Pipeline(std::shared_ptr<const PartnershipDirectory> partnership,
                   audit::AuditLog* audit, audit::RefusalLog* refusals,
                   const Clock* clock, PipelineOptions options)
    : partnership_(std::move(partnership)),
      audit_(audit),
      refusals_(refusals),
      clock_(clock),
      limits_(options.limits, clock),
      disk_floor_(std::move(options.disk_floor), clock) {}

absl::StatusOr<std::shared_ptr<Call>> Pipeline::Admit(const Method& method,
                                                      Caller caller) {
  auto refuse = [&](absl::Status s) -> absl::Status {
    counters_.refused_before_admission.fetch_add(1, std::memory_order_relaxed);
    return s;
  };
  if (!caller.principal.ok()) return refuse(caller.principal.status());
  const Principal& p = *caller.principal;
  if (!(method.callers & CallerBit(p.kind))) {
    return refuse(absl::PermissionDeniedError(
        absl::StrCat(p.uri, " is ", KindName(p.kind), "; ", method.name,
                     " is open to ", AllowedCallers(method.callers), " only")));
  }
  const accord::v1::Organisation* org = nullptr;
  if (p.kind == PrincipalKind::kOrg || p.kind == PrincipalKind::kAgent) {
    org = partnership_->FindOrg(p.name);
    if (org == nullptr) {
      return refuse(absl::PermissionDeniedError(absl::StrCat(
          "organisation '", p.name, "' is not a member of this partnership")));
    }
    if (method.needs_actor &&
        (caller.actor.user_id().empty() || caller.actor.role().empty())) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "the acting practitioner is missing: every ", method.name,
          " from an organisation's system names the person acting, in "
          "metadata '",
          kUserMetadataKey, "' (their user id) and '", kRoleMetadataKey,
          "' (their role)")));
    }
  } else if (p.kind == PrincipalKind::kAuditor &&
             !partnership_->IsAuditor(p.uri)) {
    return refuse(absl::PermissionDeniedError(
        absl::StrCat(p.uri, " is not an auditor of this partnership")));
  }
  if (auto s = disk_floor_.Check(); !s.ok()) return refuse(s);
  auto permit = limits_.Admit(p.kind == PrincipalKind::kOrg ? p.name : p.uri);
  if (!permit.ok()) return refuse(permit.status());

  auto call = std::make_shared<Call>();
  call->method_ = &method;
  call->caller_ = std::move(caller);
  call->org_ = org;
  call->partnership_ = partnership_;  // keeps `org` alive
  call->permit_ = std::move(*permit);
  counters_.admitted.fetch_add(1, std::memory_order_relaxed);
  return call;
}

accord::v1::AuditEntry Pipeline::RefusalEntry(const Method& method,
                                              const Caller& caller) const {
  accord::v1::AuditEntry e;
  if (caller.principal.ok()) {
    const Principal& p = *caller.principal;
    e.set_caller(p.uri);
    if ((p.kind == PrincipalKind::kOrg || p.kind == PrincipalKind::kAgent) &&
        partnership_->FindOrg(p.name) != nullptr) {
      e.set_caller_org(p.name);
    }
  } else {
    e.set_caller(caller.peer_uris);
  }
  *e.mutable_actor() = caller.actor;
  e.set_method(method.name);
  e.set_action(method.action);
  return e;
}

void Pipeline::RefuseUnparsed(const std::string& method, const Caller& caller,
                              const absl::Status& status) {
  counters_.refused_before_admission.fetch_add(1, std::memory_order_relaxed);
  const Method unparsed{method.c_str(), accord::v1::ACTION_UNSPECIFIED, 0,
                        false};
  RecordRefusal(RefusalEntry(unparsed, caller), status,
                audit::RefusalLog::Stage::kBeforeAdmission,
                [](absl::Status) {});
}

void Pipeline::RefuseRequest(const Method& method, const Caller& caller,
                             const std::string& detail, absl::Status status,
                             std::function<void(absl::Status)> done) {
  counters_.refused_before_admission.fetch_add(1, std::memory_order_relaxed);
  accord::v1::AuditEntry entry = RefusalEntry(method, caller);
  entry.set_detail(detail);
  RecordRefusal(std::move(entry), status,
                audit::RefusalLog::Stage::kBeforeAdmission, std::move(done));
}

void Pipeline::RecordRefusal(accord::v1::AuditEntry entry,
                             const absl::Status& status,
                             audit::RefusalLog::Stage stage,
                             std::function<void(absl::Status)> done) {
  entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
  entry.set_deny_reason(std::string(status.message()));
  refusals_->Record(
      std::move(entry), status.code(), stage,
      [this, status, done = std::move(done)](
          absl::StatusOr<std::optional<uint64_t>> recorded) {
        done(recorded.ok() ? status : AuditFailure(recorded.status()));
      });
}

void Pipeline::AppendAll(std::vector<accord::v1::AuditEntry> entries,
                         std::function<void(absl::StatusOr<uint64_t>)> done) {
  if (entries.size() == 1) {
    audit_->Append(std::move(entries[0]), std::move(done));
    return;
  }
  // Several entries share a counter of those still pending; the first
  // failure wins.
  struct Pending {
    std::atomic<size_t> left;
    std::atomic<uint64_t> first{UINT64_MAX};
    absl::Mutex mu;  // guards `status`, taken only on failure
    absl::Status status;
    std::function<void(absl::StatusOr<uint64_t>)> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = entries.size();
  pending->done = std::move(done);
  for (auto& e : entries) {
    audit_->Append(std::move(e), [pending](absl::StatusOr<uint64_t> seq) {
      if (seq.ok()) {
        uint64_t first = pending->first.load();
        while (*seq < first &&
               !pending->first.compare_exchange_weak(first, *seq)) {
        }
      } else {
        absl::MutexLock lock(&pending->mu);
        if (pending->status.ok()) pending->status = seq.status();
      }
      if (pending->left.fetch_sub(1) != 1) return;
      absl::Status status;
      {
        absl::MutexLock lock(&pending->mu);
        status = pending->status;
      }
      if (!status.ok()) return pending->done(status);
      pending->done(pending->first.load());
    });
  }
}

absl::Status Pipeline::AuditFailure(const absl::Status& cause) {
  counters_.audit_failures.fetch_add(1, std::memory_order_relaxed);
  // The process log hears of every failure, at most once a second, with the
  // number since the last line.
  const int64_t now = absl::ToUnixNanos(clock_->Now());
  int64_t last = last_failure_log_ns_.load();
  const uint64_t unlogged = unlogged_failures_.fetch_add(1) + 1;
  if (now - last >= absl::ToInt64Nanoseconds(absl::Seconds(1)) &&
      last_failure_log_ns_.compare_exchange_strong(last, now)) {
    unlogged_failures_.fetch_sub(unlogged);
    std::fprintf(stderr,
                 "accord-gateway: the audit log could not commit (%llu "
                 "call(s) refused since the last report): %s\n",
                 static_cast<unsigned long long>(unlogged),
                 std::string(cause.message()).c_str());
  }
  return absl::UnavailableError(absl::StrCat(
      "the audit log could not record this decision; nothing was released (",
      cause.message(), ")"));
}

absl::Duration Call::HolderDeadline(absl::Duration configured,
                                    absl::Time now) const {
  if (caller_.deadline == absl::InfiniteFuture()) return configured;
  const absl::Duration left = caller_.deadline - now;
  return std::max(
      std::min(configured, left - std::max(left / 10, absl::Milliseconds(50))),
      absl::Milliseconds(1));
}

}  // namespace accord::gateway
