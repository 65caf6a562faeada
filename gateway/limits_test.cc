#include "gateway/limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;

MATCHER_P2(StatusIs, code, msg, "") {
  return arg.status().code() == code &&
         ::testing::ExplainMatchResult(msg, std::string(arg.status().message()),
                                       result_listener);
}

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

TEST(OrgLimitsTest, RateLimitAllowsBurstThenRefusesUntilTokensRefill) {
  FakeClock clock(kStart);
  OrgLimits limits({/*requests_per_second=*/2, /*burst=*/3, 0}, &clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limits.Admit("police").ok()) << i;
  EXPECT_THAT(limits.Admit("police"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("'police' exceeded its rate limit of 2")));
  clock.Advance(absl::Milliseconds(500));  // one token at 2/s
  EXPECT_TRUE(limits.Admit("police").ok());
  EXPECT_FALSE(limits.Admit("police").ok());
  clock.Advance(absl::Seconds(60));  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limits.Admit("police").ok()) << i;
  EXPECT_FALSE(limits.Admit("police").ok());
}

TEST(OrgLimitsTest, OneOrganisationsFloodDoesNotConsumeAnothersAllowance) {
  FakeClock clock(kStart);
  OrgLimits limits({1, 5, 0}, &clock);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += limits.Admit("police").ok();
  EXPECT_EQ(admitted, 5);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limits.Admit("refuge").ok()) << i;
}

TEST(OrgLimitsTest, InFlightCapReleasesSlotWhenPermitIsDestroyed) {
  FakeClock clock(kStart);
  OrgLimits limits({0, 0, /*max_in_flight=*/2}, &clock);
  auto a = limits.Admit("police");
  auto b = limits.Admit("police");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(limits.InFlight("police"), 2u);
  EXPECT_THAT(limits.Admit("police"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("2 calls in flight (limit 2)")));
  EXPECT_TRUE(limits.Admit("refuge").ok());  // another org is unaffected
  { auto gone = std::move(*a); }             // the call finished
  EXPECT_EQ(limits.InFlight("police"), 1u);
  EXPECT_TRUE(limits.Admit("police").ok());
}

TEST(OrgLimitsTest, MovedPermitReleasesExactlyOnce) {
  FakeClock clock(kStart);
  OrgLimits limits({0, 0, 3}, &clock);
  {
    auto p = limits.Admit("police");
    ASSERT_TRUE(p.ok());
    OrgLimits::Permit moved = std::move(*p);
    OrgLimits::Permit again;
    again = std::move(moved);
    EXPECT_EQ(limits.InFlight("police"), 1u);
  }
  EXPECT_EQ(limits.InFlight("police"), 0u);
}

TEST(OrgLimitsTest, PermitMayOutliveItsLimits) {
  // A call's completion can be destroyed on the audit writer's thread after
  // the gateway's pipeline (and its limits) has gone, at shutdown.
  FakeClock clock(kStart);
  auto limits = std::make_unique<OrgLimits>(LimitOptions{0, 0, 3}, &clock);
  auto p = limits->Admit("police");
  ASSERT_TRUE(p.ok());
  OrgLimits::Permit late = std::move(*p);
  limits.reset();
  { OrgLimits::Permit gone = std::move(late); }  // released without harm
}

TEST(OrgLimitsTest, ZeroMeansUnlimited) {
  FakeClock clock(kStart);
  OrgLimits limits(LimitOptions::FromProto({}), &clock);
  std::vector<OrgLimits::Permit> held;
  for (int i = 0; i < 10000; ++i) {
    auto p = limits.Admit("police");
    ASSERT_TRUE(p.ok());
    held.push_back(std::move(*p));
  }
  EXPECT_EQ(limits.InFlight("police"), 10000u);
}

TEST(OrgLimitsTest, DefaultBurstIsOneSecondOfRate) {
  FakeClock clock(kStart);
  accord::v1::RateLimit proto;
  proto.set_requests_per_second(4);
  OrgLimits limits(LimitOptions::FromProto(proto), &clock);
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += limits.Admit("police").ok();
  EXPECT_EQ(admitted, 4);
}

}  // namespace
}  // namespace accord::gateway
