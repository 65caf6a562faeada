// Who may read the partnership's audit log, and how each read is recorded:
// the auditor API's access policy (auditor/auditor_api.h) over the gateway's
// request pipeline. A read is authorised and admitted like every gateway
// call (the partnership's auditors only, under the same limits), and the
// access entry is durable before anything is read; refusals go through the
// pipeline's refusal log. Thread-safe.
#ifndef ACCORD_GATEWAY_AUDITOR_ACCESS_H_
#define ACCORD_GATEWAY_AUDITOR_ACCESS_H_

#include <functional>
#include <string>

#include "auditor/auditor_api.h"
#include "gateway/pipeline.h"

namespace accord::gateway {

class GatewayAuditorAccess final : public auditor::AuditorAccess {
 public:
  // `pipeline` must outlive the access.
  explicit GatewayAuditorAccess(Pipeline* pipeline) : pipeline_(pipeline) {}

  void AuthoriseRead(const Caller& caller, const std::string& method,
                     const std::string& detail,
                     std::function<void(absl::Status)> done) override;
  void RefuseRead(const Caller& caller, const std::string& method,
                  const std::string& detail, absl::Status status,
                  std::function<void(absl::Status)> done) override;
  audit::Reviewer ReviewerOf(const Caller& caller) const override;

 private:
  Pipeline* pipeline_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_AUDITOR_ACCESS_H_
