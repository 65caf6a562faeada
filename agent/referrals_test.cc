// Watching referrals: the open referrals first, then every change once, in
// order; resuming from a cursor gives exactly what came after it. Real
// SQLite store in a temporary directory.

#include "agent/referrals.h"

#include <string>
#include <vector>

#include "agent/agent_audit.h"
#include "agent/test_util.h"
#include "audit/sqlite_audit_log.h"
#include "audit/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::agent {
namespace {

using accord::v1::ReferralEvent;
using accord::v1::ReferralState;
using testing::AgentFixture;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ReferralWatchTest : public ::testing::Test {
 protected:
  ReferralWatchTest()
      : f_("referral_watch"),
        log_(OpenLog(f_)),
        audit_(NewAgentAuditLog("vol-a", f_.partnership, log_.get(),
                                f_.store.get(), "test-agent")),
        referrals_("vol-a", f_.partnership, f_.store.get(), f_.engine.get(), {},
                   std::nullopt, nullptr, &f_.clock, audit_.get()) {}

  static std::unique_ptr<audit::AuditLog> OpenLog(AgentFixture& f) {
    audit::SqliteAuditLogOptions o;
    o.db_path = f.dir + "/agent-audit.db";
    o.signer = audit::testing::TestSigner(7);
    o.clock = &f.clock;
    auto log = audit::OpenSqliteAuditLog(o);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Stores `id` with one more status entry, as a notice would.
  int64_t Change(const std::string& id, ReferralState state,
                 accord::v1::ReferralBox box) {
    accord::v1::Referral& r = held_[id];
    r.set_id(id);
    r.set_from_org(box == accord::v1::REFERRAL_BOX_OUTBOX ? "vol-a" : "vol-b");
    r.set_to_org(box == accord::v1::REFERRAL_BOX_OUTBOX ? "vol-b" : "vol-a");
    r.set_purpose("support");
    r.set_state(state);
    r.add_history()->set_state(state);
    auto cursor = f_.store->MergeReferral(r, box);
    EXPECT_TRUE(cursor.ok()) << cursor.status();
    return cursor.ok() ? *cursor : -1;
  }

  std::unique_ptr<ReferralWatch> Watch(
      accord::v1::ReferralBox box,
      std::optional<int64_t> after = std::nullopt) {
    auto w = ReferralWatch::Start(&referrals_, box, after);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(*w) : nullptr;
  }

  // Every event the watch has now, "id state kind@cursor" each.
  static std::vector<std::string> Drain(ReferralWatch& w, int batch = 100) {
    std::vector<std::string> out;
    while (true) {
      auto next = w.Next(batch);
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok() || next->empty()) return out;
      for (const ReferralEvent& e : *next) {
        out.push_back(absl::StrCat(
            e.referral().referral().id(), " ",
            accord::v1::ReferralState_Name(e.referral().referral().state())
                .substr(15),
            " ", accord::v1::ReferralEventKind_Name(e.kind()).substr(20), "@",
            e.cursor()));
      }
    }
  }

  AgentFixture f_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<AgentAudit> audit_;
  Referrals referrals_;
  std::map<std::string, accord::v1::Referral> held_;
};

TEST_F(ReferralWatchTest, BeginsWithTheOpenReferralsThenEachChangeOnce) {
  EXPECT_EQ(Change("ref-1", accord::v1::REFERRAL_STATE_SENT,
                   accord::v1::REFERRAL_BOX_OUTBOX),
            1);
  Change("ref-2", accord::v1::REFERRAL_STATE_SENT,
         accord::v1::REFERRAL_BOX_OUTBOX);
  Change("ref-2", accord::v1::REFERRAL_STATE_WITHDRAWN,
         accord::v1::REFERRAL_BOX_OUTBOX);  // final: not open
  EXPECT_EQ(Change("ref-3", accord::v1::REFERRAL_STATE_DELIVERED,
                   accord::v1::REFERRAL_BOX_INBOX),
            4);
  // A repeated notice changes nothing and is no event.
  auto same =
      f_.store->MergeReferral(held_["ref-3"], accord::v1::REFERRAL_BOX_INBOX);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0);

  auto watch = Watch(accord::v1::REFERRAL_BOX_UNSPECIFIED);
  ASSERT_NE(watch, nullptr);
  EXPECT_THAT(Drain(*watch, 1),
              ElementsAre("ref-1 SENT CURRENT@4", "ref-3 DELIVERED CURRENT@4"));
  EXPECT_EQ(watch->Heartbeat().cursor(), 4u);
  EXPECT_EQ(watch->Heartbeat().kind(),
            accord::v1::REFERRAL_EVENT_KIND_HEARTBEAT);

  Change("ref-1", accord::v1::REFERRAL_STATE_DELIVERED,
         accord::v1::REFERRAL_BOX_OUTBOX);
  Change("ref-3", accord::v1::REFERRAL_STATE_ACKNOWLEDGED,
         accord::v1::REFERRAL_BOX_INBOX);
  EXPECT_THAT(Drain(*watch), ElementsAre("ref-1 DELIVERED CHANGED@5",
                                         "ref-3 ACKNOWLEDGED CHANGED@6"));
  EXPECT_THAT(Drain(*watch), IsEmpty());
  EXPECT_EQ(watch->cursor(), 6);

  // One box only.
  auto inbox = Watch(accord::v1::REFERRAL_BOX_INBOX);
  ASSERT_NE(inbox, nullptr);
  EXPECT_THAT(Drain(*inbox), ElementsAre("ref-3 ACKNOWLEDGED CURRENT@6"));
}

TEST_F(ReferralWatchTest, ResumingFromACursorGivesExactlyWhatCameAfter) {
  Change("ref-1", accord::v1::REFERRAL_STATE_SENT,
         accord::v1::REFERRAL_BOX_OUTBOX);
  auto first = Watch(accord::v1::REFERRAL_BOX_OUTBOX);
  ASSERT_NE(first, nullptr);
  Drain(*first);
  Change("ref-1", accord::v1::REFERRAL_STATE_DELIVERED,
         accord::v1::REFERRAL_BOX_OUTBOX);
  EXPECT_THAT(Drain(*first), ElementsAre("ref-1 DELIVERED CHANGED@2"));
  const int64_t seen = first->cursor();
  first.reset();  // the client goes away

  // Changes while nobody watches, one of them in the other box.
  Change("ref-1", accord::v1::REFERRAL_STATE_ACKNOWLEDGED,
         accord::v1::REFERRAL_BOX_OUTBOX);
  Change("ref-9", accord::v1::REFERRAL_STATE_DELIVERED,
         accord::v1::REFERRAL_BOX_INBOX);
  Change("ref-1", accord::v1::REFERRAL_STATE_ACCEPTED,
         accord::v1::REFERRAL_BOX_OUTBOX);

  auto resumed = Watch(accord::v1::REFERRAL_BOX_OUTBOX, seen);
  ASSERT_NE(resumed, nullptr);
  EXPECT_THAT(Drain(*resumed), ElementsAre("ref-1 ACKNOWLEDGED CHANGED@3",
                                           "ref-1 ACCEPTED CHANGED@5"));
  // Both boxes, from the start of the events.
  auto all = Watch(accord::v1::REFERRAL_BOX_UNSPECIFIED, 0);
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(Drain(*all).size(), 5u);

  // A cursor this agent never gave out.
  auto ahead =
      ReferralWatch::Start(&referrals_, accord::v1::REFERRAL_BOX_OUTBOX, 99);
  EXPECT_EQ(ahead.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(ahead.status().message()),
              HasSubstr("field after_cursor: 99 is ahead of this agent's "
                        "referral events (the last is 5"));
}

TEST_F(ReferralWatchTest, HeartbeatIntervalIsTheRequestsWithinBounds) {
  accord::v1::WatchReferralsRequest r;
  EXPECT_EQ(HeartbeatInterval(r), absl::Seconds(15));
  r.mutable_heartbeat_interval()->set_seconds(2);
  EXPECT_EQ(HeartbeatInterval(r), absl::Seconds(2));
  r.mutable_heartbeat_interval()->set_seconds(0);
  r.mutable_heartbeat_interval()->set_nanos(1000);
  EXPECT_EQ(HeartbeatInterval(r), absl::Seconds(1));
  r.mutable_heartbeat_interval()->set_seconds(86400);
  EXPECT_EQ(HeartbeatInterval(r), absl::Minutes(10));
}

TEST(ReferralEventsTest, TicksEachListenerAtItsIntervalAndStopsOnUnsubscribe) {
  ReferralEvents events;
  absl::Mutex mu;
  int ticks = 0, stored = 0;
  const int64_t id = events.Subscribe(
      [&](bool s) {
        absl::MutexLock lock(&mu);
        ++(s ? stored : ticks);
      },
      absl::Milliseconds(20));
  events.Publish();
  {
    absl::MutexLock lock(&mu);
    auto three = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return ticks >= 3; };
    EXPECT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(30)));
    EXPECT_EQ(stored, 1);
  }
  events.Unsubscribe(id);
  int after = 0;
  {
    absl::MutexLock lock(&mu);
    after = ticks;
  }
  events.Publish();
  absl::SleepFor(absl::Milliseconds(100));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ticks, after);
  EXPECT_EQ(stored, 1);
}

}  // namespace
}  // namespace accord::agent
