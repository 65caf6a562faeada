// Referrals at the gateway: decides each pathway with the agreements, audits
// every decision, queues accepted referrals in the ReferralStore, delivers
// them to the receiver's agent (retrying with exponential back-off while it is
// unreachable), expires those undelivered within the agreement's limit, and
// carries every status change to the parties' agents.
//
// The gateway only ever sees routing metadata (organisations, purpose,
// subject tokens, urgency, states) and a payload sealed to the receiving
// agent's key, which it cannot open.
//
// Intake (referral_intake.cc): Send, Update, Get and GetKey go through the
// gateway's Pipeline (only agents may call them: an organisation's system
// sends through its agent, which checks the person's consent); their store
// work runs on the router's own thread, never on the caller's. Delivery
// (referral_delivery.cc): one background thread takes due tasks from the
// store and calls the agents.
//
// Public methods are asynchronous: `done` runs exactly once, after the audit
// entry for the call is durable. Start() begins delivery on one background
// thread; Stop() (or the destructor) ends it and waits for calls in flight.
// Thread-safe.
#ifndef ACCORD_GATEWAY_REFERRAL_ROUTER_H_
#define ACCORD_GATEWAY_REFERRAL_ROUTER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "gateway/holder_client.h"
#include "gateway/pipeline.h"
#include "gateway/referral_store.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"
#include "runtime/serial_executor.h"

namespace accord::gateway {

struct ReferralRouterOptions {
  // Back-off between delivery attempts: initial, doubling up to max.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(60);
  // Deadline of each call to an agent.
  absl::Duration call_deadline = absl::Seconds(5);
  // Used when the matching rule sets no delivery_limit.
  absl::Duration default_delivery_limit = absl::Hours(72);
  // Calls to agents in flight at once.
  int max_in_flight = 32;
};

class ReferralRouter {
 public:
  // `referral_keys` maps organisation ids to their published X25519 referral
  // public keys (raw 32 bytes), as the partnership file names them.
  ReferralRouter(Pipeline* pipeline, policy::Engine* policy,
                 HolderClients* agents, ReferralStore* store,
                 std::map<std::string, std::string> referral_keys,
                 ReferralRouterOptions options);
  ~ReferralRouter();

  void Start();
  void Stop();

  // `request` must stay valid until `done` has run.
  void Send(Caller caller, const accord::v1::SendReferralRequest& request,
            Done<accord::v1::SendReferralResponse> done);
  void Update(Caller caller, const accord::v1::UpdateReferralRequest& request,
              Done<accord::v1::UpdateReferralResponse> done);
  void Get(Caller caller, const accord::v1::GetReferralRequest& request,
           Done<accord::v1::GetReferralResponse> done);
  void GetKey(Caller caller, const accord::v1::GetReferralKeyRequest& request,
              Done<accord::v1::GetReferralKeyResponse> done);

  // Wakes the delivery loop (after a new referral or status change).
  void Wake();

 private:
  // Runs `body` for an admitted call on the router's thread.
  template <typename Resp, typename Body>
  void Intake(const Method& method, Caller caller, Done<Resp> done, Body body,
              const std::function<void(accord::v1::AuditEntry&)>& describe);
  void DoSend(const Call& call, const accord::v1::SendReferralRequest& request,
              Done<accord::v1::SendReferralResponse> done);
  void DoUpdate(const Call& call,
                const accord::v1::UpdateReferralRequest& request,
                Done<accord::v1::UpdateReferralResponse> done);
  void DoGet(const Call& call, const accord::v1::GetReferralRequest& request,
             Done<accord::v1::GetReferralResponse> done);
  void DoGetKey(const Call& call,
                const accord::v1::GetReferralKeyRequest& request,
                Done<accord::v1::GetReferralKeyResponse> done);
  // The organisations to tell about a change to `r`.
  std::vector<std::string> PartiesToNotify(const accord::v1::Referral& r) const;

  void Run();
  void Dispatch(const ReferralTask& task);
  void Finished(int64_t task_id);
  void OnDeliverResult(const ReferralTask& task,
                       const accord::v1::Referral& referral,
                       const absl::Status& status);
  void Expire(const ReferralTask& task, const accord::v1::Referral& referral);
  void Retry(const ReferralTask& task, const std::string& error,
             absl::Time cap);
  // An event of the gateway's own (a delivery, an expiry); a refusal when
  // `refusal` says why it did not happen.
  void AuditSystemEvent(const std::string& method,
                        const accord::v1::Referral& referral,
                        const std::string& detail,
                        const std::string& refusal = "");

  Pipeline* pipeline_;
  std::shared_ptr<const PartnershipDirectory> partnership_;
  policy::Engine* policy_;
  audit::AuditLog* audit_;
  HolderClients* agents_;
  ReferralStore* store_;
  const Clock* clock_;
  const std::map<std::string, std::string> referral_keys_;
  const ReferralRouterOptions options_;
  // Intake and store work triggered from audit and gRPC callbacks run here,
  // never on the audit writer's or gRPC's threads.
  SerialExecutor executor_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int64_t> busy_ ABSL_GUARDED_BY(mu_);
  std::thread worker_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_REFERRAL_ROUTER_H_
