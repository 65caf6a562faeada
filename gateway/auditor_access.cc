#include "gateway/auditor_access.h"

#include <map>

namespace accord::gateway {
namespace {

// The auditor API's methods, by the name its entries carry.
const Method& AuditorMethod(const std::string& name) {
  static const Method kMarkReviewedAccess{"MarkReviewed/authorise",
                                          accord::v1::ACTION_UNSPECIFIED,
                                          kAuditorCallers, false};
  static const auto* methods = new std::map<std::string, const Method*>{
      {"AuditSearch", &methods::kAuditSearch},
      {"SubjectAccessReport", &methods::kSubjectAccessReport},
      {"ReviewQueue", &methods::kReviewQueue},
      {"MarkReviewed", &methods::kMarkReviewed},
      {"MarkReviewed/authorise", &kMarkReviewedAccess},
      {"GetTreeHead", &methods::kGetTreeHead},
      {"GetInclusionProof", &methods::kGetInclusionProof},
      {"GetConsistencyProof", &methods::kGetConsistencyProof},
      {"AuditExport", &methods::kAuditExport},
  };
  auto it = methods->find(name);
  // Any other read is still a read of the log: auditors only.
  return it != methods->end() ? *it->second : methods::kAuditSearch;
}

struct Recorded {};

}  // namespace

void GatewayAuditorAccess::AuthoriseRead(
    const Caller& caller, const std::string& method, const std::string& detail,
    std::function<void(absl::Status)> done) {
  pipeline_->Run<Recorded>(
      AuditorMethod(method), caller,
      [done = std::move(done)](absl::StatusOr<Recorded> r) {
        done(r.ok() ? absl::OkStatus() : r.status());
      },
      [this, detail](std::shared_ptr<const Call> call, Done<Recorded> recorded) {
        accord::v1::AuditEntry entry = call->Entry();
        entry.set_detail(detail);
        entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
        pipeline_->Release(std::move(entry), Recorded{}, std::move(recorded));
      });
}

void GatewayAuditorAccess::RefuseRead(const Caller& caller,
                                      const std::string& method,
                                      const std::string& detail,
                                      absl::Status status,
                                      std::function<void(absl::Status)> done) {
  pipeline_->RefuseRequest(AuditorMethod(method), caller, detail,
                           std::move(status), std::move(done));
}

audit::Reviewer GatewayAuditorAccess::ReviewerOf(const Caller& caller) const {
  audit::Reviewer r;
  if (caller.principal.ok()) r.caller = caller.principal->uri;
  r.actor = caller.actor;
  return r;
}

}  // namespace accord::gateway
