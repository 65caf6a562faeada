#include "gateway/referral_state.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace accord::gateway {
namespace {

using accord::v1::ReferralState;
using accord::v1::ReferralStatus;

std::string Name(ReferralState s) {
  const std::string& n = accord::v1::ReferralState_Name(s);
  constexpr size_t kPrefix = sizeof("REFERRAL_STATE_") - 1;
  return n.size() > kPrefix ? n.substr(kPrefix)
                            : absl::StrCat(static_cast<int>(s));
}

// Which party makes each change.
ReferralParty MakerOf(ReferralState next) {
  switch (next) {
    case accord::v1::REFERRAL_STATE_SENT:
    case accord::v1::REFERRAL_STATE_DELIVERED:
    case accord::v1::REFERRAL_STATE_EXPIRED:
      return ReferralParty::kGateway;
    case accord::v1::REFERRAL_STATE_WITHDRAWN:
      return ReferralParty::kReferrer;
    default:
      return ReferralParty::kReceiver;
  }
}

bool Follows(ReferralState from, ReferralState to) {
  using namespace accord::v1;
  switch (to) {
    case REFERRAL_STATE_DELIVERED:
    case REFERRAL_STATE_EXPIRED:
      return from == REFERRAL_STATE_SENT;
    case REFERRAL_STATE_ACKNOWLEDGED:
      return from == REFERRAL_STATE_DELIVERED;
    case REFERRAL_STATE_ACCEPTED:
    case REFERRAL_STATE_DECLINED:
      return from == REFERRAL_STATE_DELIVERED ||
             from == REFERRAL_STATE_ACKNOWLEDGED;
    case REFERRAL_STATE_ENGAGED:
      return from == REFERRAL_STATE_ACCEPTED;
    case REFERRAL_STATE_CLOSED:
      return from == REFERRAL_STATE_ACCEPTED || from == REFERRAL_STATE_ENGAGED;
    case REFERRAL_STATE_WITHDRAWN:
      return from == REFERRAL_STATE_SENT || from == REFERRAL_STATE_DELIVERED ||
             from == REFERRAL_STATE_ACKNOWLEDGED ||
             from == REFERRAL_STATE_ACCEPTED;
    default:
      return false;
  }
}

const char* PartyName(ReferralParty p) {
  switch (p) {
    case ReferralParty::kReferrer:
      return "the referrer";
    case ReferralParty::kReceiver:
      return "the receiver";
    case ReferralParty::kGateway:
      return "the gateway";
    case ReferralParty::kOther:
      break;
  }
  return "an organisation not on the referral";
}

}  // namespace

ReferralParty PartyOf(const accord::v1::Referral& referral,
                      const std::string& org) {
  if (org == referral.to_org()) return ReferralParty::kReceiver;
  if (org == referral.from_org()) return ReferralParty::kReferrer;
  return ReferralParty::kOther;
}

bool IsFinal(ReferralState state) {
  return state == accord::v1::REFERRAL_STATE_DECLINED ||
         state == accord::v1::REFERRAL_STATE_CLOSED ||
         state == accord::v1::REFERRAL_STATE_WITHDRAWN ||
         state == accord::v1::REFERRAL_STATE_EXPIRED;
}

absl::Status CheckTransition(const accord::v1::Referral& referral,
                             const ReferralStatus& next, ReferralParty party) {
  const ReferralState from = referral.state();
  const ReferralState to = next.state();
  if (to == accord::v1::REFERRAL_STATE_UNSPECIFIED ||
      to == accord::v1::REFERRAL_STATE_SENT) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field status.state: ", Name(to), " is not a change one can ask for"));
  }
  const ReferralParty maker = MakerOf(to);
  if (party != maker) {
    return absl::PermissionDeniedError(absl::StrCat(
        "only ", PartyName(maker), " may mark referral ", referral.id(), " ",
        Name(to), "; the caller is ", PartyName(party)));
  }
  if (IsFinal(from)) {
    return absl::FailedPreconditionError(
        absl::StrCat("referral ", referral.id(), " is ", Name(from),
                     ", which is final; it cannot become ", Name(to)));
  }
  if (!Follows(from, to)) {
    std::string why;
    if (to == accord::v1::REFERRAL_STATE_CLOSED) {
      why = ": it was never accepted";
    } else if (to == accord::v1::REFERRAL_STATE_ENGAGED) {
      why = ": it must be accepted first";
    } else if (to == accord::v1::REFERRAL_STATE_WITHDRAWN) {
      why = ": the receiver is already working with the person";
    }
    return absl::FailedPreconditionError(
        absl::StrCat("referral ", referral.id(), " cannot go from ", Name(from),
                     " to ", Name(to), why));
  }
  const bool needs_reason = to == accord::v1::REFERRAL_STATE_DECLINED ||
                            to == accord::v1::REFERRAL_STATE_WITHDRAWN ||
                            to == accord::v1::REFERRAL_STATE_EXPIRED;
  if (needs_reason && next.reason().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field status.reason: required when marking a referral ", Name(to)));
  }
  const bool closing = to == accord::v1::REFERRAL_STATE_CLOSED;
  if (closing && next.outcome() == accord::v1::OUTCOME_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        "field status.outcome: required when closing a referral (NEED_MET, "
        "NEED_PARTLY_MET, NEED_NOT_MET or WITHDREW)");
  }
  if (!closing && next.outcome() != accord::v1::OUTCOME_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("field status.outcome: only a CLOSED status has an "
                     "outcome, not ",
                     Name(to)));
  }
  return absl::OkStatus();
}

void ApplyTransition(accord::v1::Referral& referral, ReferralStatus status) {
  referral.set_state(status.state());
  *referral.add_history() = std::move(status);
}

}  // namespace accord::gateway
