// Channels from the gateway to each partner's agent (the Holder API).
//
// One channel per holder (runtime/server_channel.h), whose handshake insists
// on spiffe://<p>/agent/<org> and a certificate the partnership CRL does not
// revoke, so a misrouted address or a revoked agent can never receive a
// disclosure request or a referral; a CRL reload applies to open channels.
// Calls are asynchronous (gRPC callback API) with a per-call deadline. A
// failed call's status is in words safe to show the requester ("the holder's
// agent presented a revoked certificate", "the holder's agent is
// unreachable"): no address, port or transport text, which go to the
// gateway's process log instead. Thread-safe.
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
#include "runtime/revocation.h"

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

  // A statistics run's part at `holder_org`'s agent; as Disclose.
  using StatisticsDone =
      std::function<void(absl::Status, accord::v1::HolderStatisticsResponse)>;
  virtual void Statistics(const std::string& holder_org,
                          accord::v1::HolderStatisticsRequest request,
                          absl::Duration deadline, StatisticsDone done) = 0;

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

// Builds clients for every organisation of the partnership that has an
// agent_address. `revocation` (the partnership CRL; null only when the
// configuration allows no CRL) must outlive the clients. Process log lines
// start with `log_prefix`.
absl::StatusOr<std::unique_ptr<HolderClients>> MakeHolderClients(
    const accord::v1::Partnership& partnership, const accord::v1::TlsFiles& tls,
    const RevocationList* revocation, const std::string& log_prefix);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_HOLDER_CLIENT_H_
