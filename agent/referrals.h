// The agent's referral inbox and outbox.
//
// Sending: the partner's system asks its agent to refer a subject it holds.
// The agent derives nothing new: it takes the subject's tokens, finds the
// consent that covers the referral (unless the rule's no-consent clause is
// relied on), checks the content against its own copy of the agreements
// (only what the rule releases may go), seals the content to the receiving
// agent's key as published in the partnership file, and hands the sealed
// referral to the gateway. The outbox keeps it, and every status change the
// gateway reports.
//
// Receiving: the gateway delivers a referral (DeliverReferral); the agent
// checks it is the receiver, that its own agreements permit the pathway and
// that the payload opens with its key, and stores it in the inbox exactly
// once. Content is opened only for display to this partner's own systems.
// Status changes made here go through the gateway, which decides them.
//
// Watchers (WatchReferrals, ReferralWatch below) read the durable referral
// events of the store: the referrals open when they start (or every change
// after a cursor they resume from), then each change as it is stored, once
// and in order. Thread-safe.
#ifndef ACCORD_AGENT_REFERRALS_H_
#define ACCORD_AGENT_REFERRALS_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "agent/agent_audit.h"
#include "agent/store.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"
#include "runtime/seal.h"

namespace accord::agent {

// Wakes the current watchers: when a referral change has been stored
// (`stored` true), and every watcher's own heartbeat interval (false). A
// listener runs on the thread that stored the change, or on this object's
// ticking thread, and must not block for long.
class ReferralEvents {
 public:
  using Listener = std::function<void(bool stored)>;
  ReferralEvents();
  ~ReferralEvents();
  ReferralEvents(const ReferralEvents&) = delete;
  ReferralEvents& operator=(const ReferralEvents&) = delete;

  // `listener` hears every Publish, and a tick every `heartbeat`.
  int64_t Subscribe(Listener listener, absl::Duration heartbeat);
  // After Unsubscribe returns, the listener is not running and never runs
  // again.
  void Unsubscribe(int64_t id);
  // A change has been stored.
  void Publish();

 private:
  struct Subscription {
    Listener listener;
    absl::Duration heartbeat;
    absl::Time next_tick;
  };
  void Tick();

  absl::Mutex mu_;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Subscription> listeners_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_;  // last: starts once the rest is ready
};

class ReferralWatch;

// How often an idle watch hears a heartbeat (the request's, within bounds).
absl::Duration HeartbeatInterval(
    const accord::v1::WatchReferralsRequest& request);

template <typename T>
using ReferralDone = std::function<void(absl::StatusOr<T>)>;

class Referrals {
 public:
  // `referral_keys`: every organisation's published referral public key.
  // `own_key`: this agent's key pair, absent when it has none (it can then
  // send but not receive). `gateway`: a stub presenting this agent's
  // identity, null when no gateway address is configured. `audit` records
  // each referral this agent would not send, and each it sends before it is
  // sent (agent/agent_audit.h).
  Referrals(std::string self_org,
            std::shared_ptr<const PartnershipDirectory> partnership,
            AgentStore* store, const policy::Engine* policy,
            std::map<std::string, std::string> referral_keys,
            std::optional<X25519KeyPair> own_key,
            std::unique_ptr<accord::v1::Gateway::StubInterface> gateway,
            const Clock* clock, AgentAudit* audit);

  // Local API.
  void Send(const accord::v1::LocalSendReferralRequest& request,
            const accord::v1::Actor& actor,
            ReferralDone<accord::v1::SendReferralResponse> done);
  absl::StatusOr<accord::v1::ListReferralsResponse> List(
      const accord::v1::ListReferralsRequest& request);
  void Update(const accord::v1::UpdateReferralRequest& request,
              const accord::v1::Actor& actor,
              ReferralDone<accord::v1::UpdateReferralResponse> done);
  ReferralEvents& events() { return events_; }

  // Opens a watch (AgentLocal.WatchReferrals): see ReferralWatch.
  absl::StatusOr<std::unique_ptr<ReferralWatch>> Watch(
      const accord::v1::WatchReferralsRequest& request);

  // Holder API (the gateway only).
  absl::StatusOr<accord::v1::DeliverReferralResponse> Deliver(
      const accord::v1::DeliverReferralRequest& request);
  absl::StatusOr<accord::v1::NotifyReferralStatusResponse> Notify(
      const accord::v1::NotifyReferralStatusRequest& request);

 private:
  // The referral as shown to this partner: content opened when this agent
  // is the receiver.
  accord::v1::ReferralView View(const accord::v1::Referral& referral) const;
  // Wakes the watchers after a change was stored.
  void Stored();
  // Builds and seals the referral; the gateway call follows.
  absl::StatusOr<accord::v1::Referral> Prepare(
      const accord::v1::LocalSendReferralRequest& request);

  const std::string self_org_;
  std::shared_ptr<const PartnershipDirectory> partnership_;
  AgentStore* store_;
  const policy::Engine* policy_;
  const std::map<std::string, std::string> referral_keys_;
  const std::optional<X25519KeyPair> own_key_;
  std::unique_ptr<accord::v1::Gateway::StubInterface> gateway_;
  const Clock* clock_;
  AgentAudit* const audit_;
  ReferralEvents events_;
  friend class ReferralWatch;
};

// One watcher's way through this agent's referral events: first the
// referrals open when it started (CURRENT events, all carrying the cursor
// they are as of) or, resuming, every change after its cursor; then every
// later change (CHANGED), oldest first, each once. Reads the store only, so
// a watcher that falls behind merely lags; nothing is buffered for it.
// Thread-compatible: one per stream.
class ReferralWatch {
 public:
  // `after_cursor` absent: begin with the referrals open now. OutOfRange
  // when the cursor is ahead of every event this agent holds.
  static absl::StatusOr<std::unique_ptr<ReferralWatch>> Start(
      const Referrals* referrals, accord::v1::ReferralBox box,
      std::optional<int64_t> after_cursor);

  // Up to `limit` events not yet returned; empty when caught up.
  absl::StatusOr<std::vector<accord::v1::ReferralEvent>> Next(int limit);
  // "Nothing further up to cursor()".
  accord::v1::ReferralEvent Heartbeat() const;
  int64_t cursor() const { return cursor_; }

 private:
  ReferralWatch(const Referrals* referrals, accord::v1::ReferralBox box,
                int64_t cursor, std::vector<StoredReferral> open)
      : referrals_(referrals),
        box_(box),
        cursor_(cursor),
        open_(std::move(open)) {}

  const Referrals* referrals_;
  const accord::v1::ReferralBox box_;
  int64_t cursor_;
  std::vector<StoredReferral> open_;  // CURRENT events still to return
  size_t next_open_ = 0;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_REFERRALS_H_
