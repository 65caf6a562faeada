// The life of a referral as a state machine: which status may follow which,
// and who may make each change.
//
//   SENT ──► DELIVERED ──► ACKNOWLEDGED ──► ACCEPTED ──► ENGAGED ──► CLOSED
//    │  (gateway)   │  (receiver)  │            │  (receiver)          ▲
//    │              │              └──► DECLINED│ (receiver, reason)   │
//    │              └──► ACCEPTED / DECLINED    └──────────────────────┘
//    └──► EXPIRED (gateway, undelivered within the agreement's limit)
//   SENT, DELIVERED, ACKNOWLEDGED, ACCEPTED ──► WITHDRAWN (referrer, reason)
//
// Only the receiver moves a referral forward; only the referrer withdraws
// it; only the gateway marks it delivered or expired. DECLINED, CLOSED,
// WITHDRAWN and EXPIRED are final. Pure functions; thread-safe.
#ifndef ACCORD_GATEWAY_REFERRAL_STATE_H_
#define ACCORD_GATEWAY_REFERRAL_STATE_H_

#include "absl/status/status.h"
#include "accord/v1/records.pb.h"

namespace accord::gateway {

// Who asks for a change, relative to the referral.
enum class ReferralParty { kReferrer, kReceiver, kGateway, kOther };

ReferralParty PartyOf(const accord::v1::Referral& referral,
                      const std::string& org);

bool IsFinal(accord::v1::ReferralState state);

// OK when `party` may move `referral` (in its current state) to `next`.
// PermissionDenied when the party may never make that change;
// FailedPrecondition when the change does not follow from the current state;
// InvalidArgument when the status lacks its reason or outcome.
absl::Status CheckTransition(const accord::v1::Referral& referral,
                             const accord::v1::ReferralStatus& next,
                             ReferralParty party);

// Appends `status` to the history and sets the current state. The caller has
// checked the transition.
void ApplyTransition(accord::v1::Referral& referral,
                     accord::v1::ReferralStatus status);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_REFERRAL_STATE_H_
