// Engine: loading from files, hot reload (keeps the old policy on a bad file,
// swaps on a good one) while other threads decide.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "policy/policy.h"
#include "policy/test_util.h"
#include "runtime/clock.h"

namespace accord::policy {
namespace {

using testing::AgreementText;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::kSupportRule;
using testing::WriteFile;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(
        ::testing::TempDir(), "/engine_test_", getpid(), "_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir_).c_str()), 0);
    partnership_ = dir_ + "/partnership.textproto";
    agreement_ = dir_ + "/support.textproto";
    WriteFile(partnership_, testing::kPartnership);
    WriteFile(agreement_, AgreementText("a1", kSupportRule));
  }

  Request Support() const {
    Request q;
    q.requester_org = "vol-a";
    q.holder_org = "vol-b";
    q.action = accord::v1::ACTION_QUERY;
    q.purpose = "support";
    return q;
  }

  std::string dir_, partnership_, agreement_;
  FakeClock clock_{testing::InWindow()};
};

TEST_F(EngineTest, DecidesAtTheClocksNow) {
  auto engine = Engine::Create(partnership_, {agreement_}, &clock_);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_TRUE((*engine)->Decide(Support()).allowed());
  clock_.Set(testing::WindowEnd());
  EXPECT_EQ((*engine)->Decide(Support()).deny_reason,
            accord::v1::DENY_REASON_AGREEMENT_NOT_IN_FORCE);
  EXPECT_TRUE((*engine)->Register(false).empty());
  EXPECT_EQ((*engine)->Register(true).size(), 1u);
}

TEST_F(EngineTest, CreateFailsNamingTheFile) {
  WriteFile(agreement_, AgreementText("a1", "  action: ACTION_QUERY\n"));
  auto engine = Engine::Create(partnership_, {agreement_}, &clock_);
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr(agreement_ + ":"));
}

TEST_F(EngineTest, ReloadKeepsTheOldPolicyOnABadFileAndSwapsOnAGoodOne) {
  auto created = Engine::Create(partnership_, {agreement_}, &clock_);
  ASSERT_TRUE(created.ok());
  Engine& engine = **created;
  EXPECT_FALSE(*engine.ReloadIfChanged());

  // Bad: an unknown purpose on line 13.
  std::string bad = AgreementText("a1", kSupportRule);
  bad.replace(bad.find("\"support\""), 9, "\"gossip\"");
  WriteFile(agreement_, bad);
  auto changed = engine.ReloadIfChanged();
  ASSERT_FALSE(changed.ok());
  EXPECT_THAT(changed.status().message(),
              AllOf(HasSubstr(agreement_ + ":13:3"), HasSubstr("gossip")));
  EXPECT_TRUE(
      engine.Decide(Support()).allowed());  // the old policy still decides

  // Good: version 4, releasing only NEEDS.
  std::string good = AgreementText("a1", kSupportRule);
  good.replace(good.find("version: 3"), 10, "version: 4");
  good.replace(good.find("  release { field: \"given_name\""),
               good.find("  release { category") -
                   good.find("  release { field: \"given_name\""),
               "");
  WriteFile(agreement_, good);
  EXPECT_TRUE(engine.Reload().ok());
  const Decision d = engine.Decide(Support());
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.agreement_version(), 4u);
  EXPECT_EQ(d.plan.size(), 1);
  EXPECT_FALSE(*engine.ReloadIfChanged());
}

TEST_F(EngineTest, ReadersNeverSeeAHalfLoadedPolicyDuringReloads) {
  auto created = Engine::Create(partnership_, {agreement_}, &clock_);
  ASSERT_TRUE(created.ok());
  Engine& engine = **created;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, decided{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const Decision d = engine.Decide(Support());
        // Every version of the file allows this request.
        if (!d.allowed() ||
            (d.agreement_version() != 3 && d.agreement_version() != 5))
          ++wrong;
        // The decision keeps its policy alive across swaps.
        if (d.Explanation().find("ALLOW") == std::string::npos) ++wrong;
        ++decided;
      }
    });
  }
  std::string v5 = AgreementText("a1", kSupportRule);
  v5.replace(v5.find("version: 3"), 10, "version: 5");
  std::string bad = AgreementText("a1", kSupportRule);
  bad.replace(bad.find("ORG_KIND_VOLUNTARY"), 18, "ORG_KIND_NONSENSE");
  for (int i = 0; i < 30; ++i) {
    WriteFile(
        agreement_,
        i % 3 == 2 ? bad : (i % 2 ? v5 : AgreementText("a1", kSupportRule)));
    const absl::Status s = engine.Reload();
    EXPECT_EQ(s.ok(), i % 3 != 2) << i << " " << s;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(decided.load(), 0);
}

TEST_F(EngineTest, ProtoFormsAndCandidates) {
  auto engine = Engine::Create(partnership_, {agreement_}, &clock_);
  ASSERT_TRUE(engine.ok());
  accord::v1::DecisionRequest r;
  r.set_requester_org("vol-b");
  r.set_holder_org("vol-a");
  r.set_action(accord::v1::ACTION_QUERY);
  r.set_purpose("support");
  const auto d = (*engine)->DecideProto(r);  // no `at`: the clock's now
  EXPECT_EQ(d.verdict(), accord::v1::VERDICT_ALLOW);
  EXPECT_EQ(d.rule_id(), "r1");
  EXPECT_EQ((*engine)->CandidateHolders("vol-b", accord::v1::ACTION_QUERY,
                                        "support", clock_.Now()),
            std::vector<std::string>{"vol-a"});
}

}  // namespace
}  // namespace accord::policy
