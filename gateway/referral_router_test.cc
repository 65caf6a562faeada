// Referral intake and delivery with scripted agents, an in-memory audit log
// and a real referral store.
#include "gateway/referral_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gateway/test_fakes.h"
#include "runtime/seal.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;
using testing::ExamplePartnership;
using testing::FakeHolderClients;
using testing::Result;

constexpr char kZoe[] =
    "6d1f0c2e9a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
constexpr char kMaya[] =
    "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

struct ReferralRouterTest : ::testing::Test {
  ReferralRouterTest()
      : holders({"rape-crisis", "law-centre", "employment"}),
        law_key(GenerateX25519KeyPair()),
        employment_key(GenerateX25519KeyPair()) {
    path = absl::StrCat(::testing::TempDir(), "/referrals_",
                        ::testing::UnitTest::GetInstance()
                            ->current_test_info()
                            ->name(),
                        "_", getpid(), ".db");
    for (const char* s : {"", "-wal", "-shm"})
      std::remove(absl::StrCat(path, s).c_str());
    auto opened = ReferralStore::Open(path);
    if (!opened.ok()) std::abort();
    store = std::move(*opened);
    ReferralRouterOptions options;
    options.initial_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(20);
    router = std::make_unique<ReferralRouter>(
        p.pipeline.get(), p.policy.get(), &holders, store.get(),
        std::map<std::string, std::string>{
            {"law-centre", law_key.public_key},
            {"employment", employment_key.public_key}},
        options);
  }

  accord::v1::SendReferralRequest Referral(const std::string& id,
                                           const std::string& token = kZoe,
                                           const std::string& to = "law-centre") {
    accord::v1::SendReferralRequest req;
    auto* r = req.mutable_referral();
    r->set_id(id);
    r->set_to_org(to);
    r->set_purpose("referral");
    r->set_urgency(accord::v1::URGENCY_ROUTINE);
    auto* t = r->add_subjects();
    t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
    t->set_value(token);
    r->set_consent_reference("RC-C1");
    auto sealed = Seal(to == "law-centre" ? law_key.public_key
                                          : employment_key.public_key,
                       "content", ReferralAssociatedData(id, "rape-crisis", to));
    if (!sealed.ok()) std::abort();
    *r->mutable_payload() = *sealed;
    return req;
  }
  absl::StatusOr<accord::v1::SendReferralResponse> Send(
      const accord::v1::SendReferralRequest& req,
      const std::string& from = "rape-crisis") {
    Result<accord::v1::SendReferralResponse> r;
    router->Send(p.As(PrincipalKind::kAgent, from), req, r.Callback());
    return r.Get();
  }
  int Count(const std::string& method, accord::v1::AuditDecision d) {
    int n = 0;
    for (const auto& e : p.log.EntriesOf(method)) n += e.decision() == d;
    return n;
  }
  // Waits for `condition`, moving the injected clock on so that retries
  // fall due.
  bool WaitFor(const std::function<bool()>& condition) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!condition()) {
      if (absl::Now() > give_up) return false;
      p.clock.Advance(absl::Milliseconds(50));
      router->Wake();
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  ExamplePartnership p;
  FakeHolderClients holders;
  X25519KeyPair law_key, employment_key;
  std::string path;
  std::unique_ptr<ReferralStore> store;
  std::unique_ptr<ReferralRouter> router;
};

TEST_F(ReferralRouterTest, AnAcceptedReferralIsAuditedQueuedAndDelivered) {
  auto sent = Send(Referral("ref-zoe-0001"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->state(), accord::v1::REFERRAL_STATE_SENT);
  EXPECT_EQ(Count("SendReferral", accord::v1::AUDIT_DECISION_ALLOW), 1);
  router->Start();
  ASSERT_TRUE(WaitFor([&] { return !holders.delivered("law-centre").empty(); }));
  EXPECT_EQ(holders.delivered("law-centre")[0].id(), "ref-zoe-0001");
  ASSERT_TRUE(WaitFor(
      [&] { return Count("DeliverReferral", accord::v1::AUDIT_DECISION_ALLOW) == 1; }));
}

TEST_F(ReferralRouterTest, TheSameKeyAndContentIsARepeatDifferentContentIsRefused) {
  auto first = Referral("ref-zoe-0001");
  first.mutable_referral()->set_idempotency_key("case-77");
  auto sent = Send(first);
  ASSERT_TRUE(sent.ok()) << sent.status();
  // A retry: a fresh id and seal, the same routing.
  auto retry = Referral("ref-zoe-0002");
  retry.mutable_referral()->set_idempotency_key("case-77");
  auto again = Send(retry);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->referral_id(), "ref-zoe-0001");
  // The same key for another woman is a mistake, not a retry.
  auto other = Referral("ref-maya-0001", kMaya);
  other.mutable_referral()->set_idempotency_key("case-77");
  auto refused = Send(other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("'case-77' was already used for referral ref-zoe-0001"));
  EXPECT_EQ(Count("SendReferral", accord::v1::AUDIT_DECISION_DENY), 1);
  auto stored = store->Find("ref-maya-0001");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

TEST_F(ReferralRouterTest, AChainContinuesOnlyForTheSamePerson) {
  ASSERT_TRUE(Send(Referral("ref-zoe-0001")).ok());
  // The law centre refers on: for Zoe it may, for another woman it may not.
  auto onward = Referral("ref-zoe-0002", kZoe, "employment");
  onward.mutable_referral()->set_previous_referral_id("ref-zoe-0001");
  auto other = Referral("ref-maya-0002", kMaya, "employment");
  other.mutable_referral()->set_previous_referral_id("ref-zoe-0001");
  auto refused = Send(other, "law-centre");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("a different person"));
  EXPECT_TRUE(Send(onward, "law-centre").ok());
}

TEST_F(ReferralRouterTest, OnlyAgentsMayCarryReferrals) {
  Result<accord::v1::SendReferralResponse> r;
  const auto req = Referral("ref-zoe-0001");
  router->Send(p.Org("rape-crisis"), req, r.Callback());
  auto got = r.Get();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(got.status().message(), HasSubstr("open to agents only"));
  auto denied = p.log.EntriesOf("SendReferral");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].referral_id(), "ref-zoe-0001");
}

TEST_F(ReferralRouterTest, AReceiverThatRefusesTheHandshakeNeverHasItDelivered) {
  holders.SetReferralStatus(
      "law-centre",
      absl::UnavailableError("the holder's agent presented a revoked certificate"));
  ASSERT_TRUE(Send(Referral("ref-zoe-0001")).ok());
  router->Start();
  ASSERT_TRUE(WaitFor([&] { return holders.delivered("law-centre").size() >= 3; }));
  auto queued = store->Find("ref-zoe-0001");
  ASSERT_TRUE(queued.ok() && queued->has_value());
  EXPECT_EQ((*queued)->state(), accord::v1::REFERRAL_STATE_SENT);
  // The failure is recorded once, not at every retry.
  EXPECT_EQ(Count("DeliverReferral", accord::v1::AUDIT_DECISION_DENY), 1);
  holders.SetReferralStatus("law-centre", absl::OkStatus());
  ASSERT_TRUE(WaitFor([&] {
    auto r = store->Find("ref-zoe-0001");
    return r.ok() && r->has_value() &&
           (*r)->state() == accord::v1::REFERRAL_STATE_DELIVERED;
  }));
}

}  // namespace
}  // namespace accord::gateway
