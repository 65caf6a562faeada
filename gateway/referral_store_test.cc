#include "gateway/referral_store.h"

#include <cstdio>

#include "gateway/referral_state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::gateway {
namespace {

using accord::v1::Referral;
using accord::v1::ReferralStatus;

class ReferralStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/referrals-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            ".db";
    std::remove(path_.c_str());
    auto s = ReferralStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  static Referral Sent(const std::string& id, const std::string& key = "") {
    Referral r;
    r.set_id(id);
    r.set_idempotency_key(key);
    r.set_from_org("rape-crisis");
    r.set_to_org("law-centre");
    ReferralStatus s;
    s.set_state(accord::v1::REFERRAL_STATE_SENT);
    ApplyTransition(r, s);
    return r;
  }
  static ReferralStatus Status(accord::v1::ReferralState state) {
    ReferralStatus s;
    s.set_state(state);
    return s;
  }

  const absl::Time now_ = absl::FromUnixSeconds(1773568800);
  std::string path_;
  std::unique_ptr<ReferralStore> store_;
};

TEST_F(ReferralStoreTest, InsertIsIdempotentOnIdAndOnSenderKey) {
  auto a = store_->Insert(Sent("ref-00000001", "k1"), now_);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->created);
  auto same_id = store_->Insert(Sent("ref-00000001", "k1"), now_);
  ASSERT_TRUE(same_id.ok());
  EXPECT_FALSE(same_id->created);
  auto same_key = store_->Insert(Sent("ref-00000002", "k1"), now_);
  ASSERT_TRUE(same_key.ok());
  EXPECT_FALSE(same_key->created);
  EXPECT_EQ(same_key->referral.id(), "ref-00000001");
  Referral other = Sent("ref-00000001");
  other.set_from_org("refuge");
  EXPECT_EQ(store_->Insert(other, now_).status().code(),
            absl::StatusCode::kAlreadyExists);
  // One delivery task, whatever the repeats.
  EXPECT_EQ(*store_->PendingTaskCount(), 1);
}

TEST_F(ReferralStoreTest, QueueSurvivesReopening) {
  ASSERT_TRUE(store_->Insert(Sent("ref-00000003"), now_).ok());
  store_.reset();
  auto reopened = ReferralStore::Open(path_);
  ASSERT_TRUE(reopened.ok());
  auto due = (*reopened)->DueTasks(now_, {}, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].kind, TaskKind::kDeliver);
  EXPECT_EQ((*due)[0].target_org, "law-centre");
}

TEST_F(ReferralStoreTest, ApplyIsCompareAndSet) {
  ASSERT_TRUE(store_->Insert(Sent("ref-00000004"), now_).ok());
  auto applied = store_->Apply("ref-00000004", 1,
                               Status(accord::v1::REFERRAL_STATE_DELIVERED),
                               {"rape-crisis"}, now_);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->state(), accord::v1::REFERRAL_STATE_DELIVERED);
  EXPECT_EQ(
      store_
          ->Apply("ref-00000004", 1,
                  Status(accord::v1::REFERRAL_STATE_ACKNOWLEDGED), {}, now_)
          .status()
          .code(),
      absl::StatusCode::kAborted);
}

TEST_F(ReferralStoreTest, RetryDelaysAndNotificationCarriesTheLatestState) {
  auto inserted = store_->Insert(Sent("ref-00000005"), now_);
  ASSERT_TRUE(inserted.ok());
  auto due = store_->DueTasks(now_, {}, 10);
  ASSERT_EQ(due->size(), 1u);
  ASSERT_TRUE(
      store_->RetryTask((*due)[0].id, now_ + absl::Seconds(4), "down").ok());
  EXPECT_TRUE(store_->DueTasks(now_, {}, 10)->empty());
  EXPECT_EQ(**store_->NextDue(), now_ + absl::Seconds(4));
  EXPECT_EQ((*store_->DueTasks(now_ + absl::Seconds(4), {}, 10))[0].attempts,
            1);

  // Delivered (completing the delivery task), and a notice queued.
  ASSERT_TRUE(store_
                  ->Apply("ref-00000005", 1,
                          Status(accord::v1::REFERRAL_STATE_DELIVERED),
                          {"rape-crisis"}, now_, (*due)[0].id)
                  .ok());
  auto notices = store_->DueTasks(now_, {}, 10);
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].kind, TaskKind::kNotify);
  // A change while that notice is in flight is coalesced into it; the notice
  // that carried only the older state does not end it.
  ASSERT_TRUE(store_
                  ->Apply("ref-00000005", 2,
                          Status(accord::v1::REFERRAL_STATE_ACKNOWLEDGED),
                          {"rape-crisis"}, now_)
                  .ok());
  ASSERT_TRUE(store_->CompleteTask((*notices)[0].id, /*carried=*/2).ok());
  EXPECT_EQ(*store_->PendingTaskCount(), 1);
  ASSERT_TRUE(store_->CompleteTask((*notices)[0].id, /*carried=*/3).ok());
  EXPECT_EQ(*store_->PendingTaskCount(), 0);
}

TEST_F(ReferralStoreTest, ChainFollowsPreviousReferrals) {
  ASSERT_TRUE(store_->Insert(Sent("ref-0000000a"), now_).ok());
  Referral b = Sent("ref-0000000b");
  b.set_from_org("law-centre");
  b.set_to_org("employment");
  b.set_previous_referral_id("ref-0000000a");
  ASSERT_TRUE(store_->Insert(b, now_ + absl::Seconds(1)).ok());
  for (const char* id : {"ref-0000000a", "ref-0000000b"}) {
    auto chain = store_->Chain(id);
    ASSERT_TRUE(chain.ok());
    ASSERT_EQ(chain->size(), 2u);
    EXPECT_EQ((*chain)[0].id(), "ref-0000000a");
    EXPECT_EQ((*chain)[1].id(), "ref-0000000b");
  }
}

}  // namespace
}  // namespace accord::gateway
