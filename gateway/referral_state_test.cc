#include "gateway/referral_state.h"

#include <set>
#include <tuple>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;
using namespace accord::v1;

constexpr ReferralParty kR = ReferralParty::kReferrer;
constexpr ReferralParty kRx = ReferralParty::kReceiver;
constexpr ReferralParty kG = ReferralParty::kGateway;
constexpr ReferralParty kO = ReferralParty::kOther;

Referral At(ReferralState state) {
  Referral r;
  r.set_id("ref-test-0001");
  r.set_from_org("rape-crisis");
  r.set_to_org("law-centre");
  r.set_state(state);
  return r;
}

// A well-formed status for `to`: with a reason or outcome where required.
ReferralStatus Status(ReferralState to) {
  ReferralStatus s;
  s.set_state(to);
  if (to == REFERRAL_STATE_DECLINED || to == REFERRAL_STATE_WITHDRAWN ||
      to == REFERRAL_STATE_EXPIRED) {
    s.set_reason("a reason");
  }
  if (to == REFERRAL_STATE_CLOSED) s.set_outcome(OUTCOME_NEED_MET);
  return s;
}

// Every allowed (from, to, who): the whole table, written out independently
// of the implementation.
const std::set<std::tuple<ReferralState, ReferralState, ReferralParty>>&
Allowed() {
  static const auto* kAllowed =
      new std::set<std::tuple<ReferralState, ReferralState, ReferralParty>>{
          {REFERRAL_STATE_SENT, REFERRAL_STATE_DELIVERED, kG},
          {REFERRAL_STATE_SENT, REFERRAL_STATE_EXPIRED, kG},
          {REFERRAL_STATE_SENT, REFERRAL_STATE_WITHDRAWN, kR},
          {REFERRAL_STATE_DELIVERED, REFERRAL_STATE_ACKNOWLEDGED, kRx},
          {REFERRAL_STATE_DELIVERED, REFERRAL_STATE_ACCEPTED, kRx},
          {REFERRAL_STATE_DELIVERED, REFERRAL_STATE_DECLINED, kRx},
          {REFERRAL_STATE_DELIVERED, REFERRAL_STATE_WITHDRAWN, kR},
          {REFERRAL_STATE_ACKNOWLEDGED, REFERRAL_STATE_ACCEPTED, kRx},
          {REFERRAL_STATE_ACKNOWLEDGED, REFERRAL_STATE_DECLINED, kRx},
          {REFERRAL_STATE_ACKNOWLEDGED, REFERRAL_STATE_WITHDRAWN, kR},
          {REFERRAL_STATE_ACCEPTED, REFERRAL_STATE_ENGAGED, kRx},
          {REFERRAL_STATE_ACCEPTED, REFERRAL_STATE_CLOSED, kRx},
          {REFERRAL_STATE_ACCEPTED, REFERRAL_STATE_WITHDRAWN, kR},
          {REFERRAL_STATE_ENGAGED, REFERRAL_STATE_CLOSED, kRx},
      };
  return *kAllowed;
}

TEST(ReferralStateTest, EveryTransitionAllowedOrRefusedAsTheTableSays) {
  int allowed = 0, refused = 0;
  for (int from = REFERRAL_STATE_SENT; from <= REFERRAL_STATE_EXPIRED; ++from) {
    for (int to = REFERRAL_STATE_DELIVERED; to <= REFERRAL_STATE_EXPIRED;
         ++to) {
      for (ReferralParty who : {kR, kRx, kG, kO}) {
        const auto f = static_cast<ReferralState>(from);
        const auto t = static_cast<ReferralState>(to);
        const absl::Status s = CheckTransition(At(f), Status(t), who);
        const bool expect = Allowed().count({f, t, who}) > 0;
        EXPECT_EQ(s.ok(), expect)
            << ReferralState_Name(f) << " -> " << ReferralState_Name(t)
            << " by party " << static_cast<int>(who) << ": " << s;
        if (!s.ok()) {
          EXPECT_TRUE(s.code() == absl::StatusCode::kPermissionDenied ||
                      s.code() == absl::StatusCode::kFailedPrecondition)
              << s;
        }
        (expect ? allowed : refused)++;
      }
    }
  }
  EXPECT_EQ(allowed, 14);
  EXPECT_EQ(refused, 9 * 8 * 4 - 14);  // 9 from-states, 8 changes, 4 parties
}

TEST(ReferralStateTest, ClosingAReferralNeverAcceptedIsRefused) {
  for (ReferralState from : {REFERRAL_STATE_SENT, REFERRAL_STATE_DELIVERED,
                             REFERRAL_STATE_ACKNOWLEDGED}) {
    const absl::Status s =
        CheckTransition(At(from), Status(REFERRAL_STATE_CLOSED), kRx);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.message()), HasSubstr("never accepted"));
  }
  const absl::Status declined = CheckTransition(
      At(REFERRAL_STATE_DECLINED), Status(REFERRAL_STATE_CLOSED), kRx);
  EXPECT_THAT(std::string(declined.message()), HasSubstr("final"));
}

TEST(ReferralStateTest, NonReceiverCannotMoveItForward) {
  for (ReferralParty who : {kR, kO, kG}) {
    const absl::Status s = CheckTransition(
        At(REFERRAL_STATE_DELIVERED), Status(REFERRAL_STATE_ACCEPTED), who);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(s.message()), HasSubstr("only the receiver"));
  }
}

TEST(ReferralStateTest, OnlyTheReferrerWithdraws) {
  const absl::Status s = CheckTransition(At(REFERRAL_STATE_DELIVERED),
                                         Status(REFERRAL_STATE_WITHDRAWN), kRx);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("only the referrer"));
  const absl::Status engaged = CheckTransition(
      At(REFERRAL_STATE_ENGAGED), Status(REFERRAL_STATE_WITHDRAWN), kR);
  EXPECT_EQ(engaged.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReferralStateTest, ReasonAndOutcomeRules) {
  ReferralStatus decline;
  decline.set_state(REFERRAL_STATE_DECLINED);
  absl::Status s = CheckTransition(At(REFERRAL_STATE_DELIVERED), decline, kRx);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("status.reason"));

  ReferralStatus close;
  close.set_state(REFERRAL_STATE_CLOSED);
  s = CheckTransition(At(REFERRAL_STATE_ENGAGED), close, kRx);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("status.outcome"));

  ReferralStatus accept = Status(REFERRAL_STATE_ACCEPTED);
  accept.set_outcome(OUTCOME_NEED_MET);
  s = CheckTransition(At(REFERRAL_STATE_DELIVERED), accept, kRx);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  ReferralStatus sent;
  sent.set_state(REFERRAL_STATE_SENT);
  EXPECT_EQ(CheckTransition(At(REFERRAL_STATE_SENT), sent, kG).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReferralStateTest, PartyAndApply) {
  Referral r = At(REFERRAL_STATE_SENT);
  EXPECT_EQ(PartyOf(r, "law-centre"), kRx);
  EXPECT_EQ(PartyOf(r, "rape-crisis"), kR);
  EXPECT_EQ(PartyOf(r, "police"), kO);
  ApplyTransition(r, Status(REFERRAL_STATE_DELIVERED));
  EXPECT_EQ(r.state(), REFERRAL_STATE_DELIVERED);
  ASSERT_EQ(r.history_size(), 1);
  EXPECT_EQ(r.history(0).state(), REFERRAL_STATE_DELIVERED);
}

}  // namespace
}  // namespace accord::gateway
