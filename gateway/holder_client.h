// Channels from the gateway to each partner's agent (the Holder API).
//
// One channel per holder, verified to present spiffe://<p>/agent/<org>, so a
// misrouted address can never receive a disclosure request. Calls are
// asynchronous (gRPC callback API) with a per-call deadline. A failed call's
// status says what went wrong in words fit for the requester (unreachable,
// timed out, refused and why) and never carries addresses or transport
// detail, which go to the gateway's process log instead. Thread-safe.
#ifndef ACCORD_GATEWAY_HOLDER_CLIENT_H_
#define ACCORD_GATEWAY_HOLDER_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/config.pb.h"

namespace accord::gateway {

class HolderClients {
 public:
  using DiscloseDone =
      std::function<void(absl::Status, accord::v1::DiscloseResponse)>;

  virtual ~HolderClients() = default;
  // Calls `holder_org`'s agent. `done` runs exactly once, on a gRPC thread.
  // The request is taken by value: callers move it in, and it lives in the
  // call's state until the answer arrives.
  virtual void Disclose(const std::string& holder_org,
                        accord::v1::DiscloseRequest request,
                        absl::Duration deadline, DiscloseDone done) = 0;
  virtual bool Knows(const std::string& holder_org) const = 0;

  // Referral traffic to an organisation's agent; `done` runs exactly once,
  // on a gRPC thread, with the call's status.
  using ReferralDone = std::function<void(absl::Status)>;
  virtual void DeliverReferral(
      const std::string& org, const accord::v1::DeliverReferralRequest& request,
      absl::Duration deadline, ReferralDone done) = 0;
  virtual void NotifyReferralStatus(
      const std::string& org,
      const accord::v1::NotifyReferralStatusRequest& request,
      absl::Duration deadline, ReferralDone done) = 0;
};

// The status of a holder call as callers of HolderClients see it: OK as is;
// transport failures (unreachable, deadline, cancelled, internal) as a fixed
// sentence; the agent's own refusals with their message, bounded and free of
// control characters. `log_detail` receives the raw status for the process
// log when the call failed.
absl::Status HolderCallStatus(const grpc::Status& status,
                              std::string* log_detail);

// Builds clients for every organisation of the partnership that has an
// agent_address.
absl::StatusOr<std::unique_ptr<HolderClients>> MakeHolderClients(
    const accord::v1::Partnership& partnership,
    const accord::v1::TlsFiles& tls);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_HOLDER_CLIENT_H_
