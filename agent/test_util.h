// Test-only helpers for agent/ tests: a real store in a fresh temporary
// directory, a small partnership, an agreement, a linkage key and a fake
// clock, wired as accord-agent wires them. Not part of the library.
#ifndef ACCORD_AGENT_TEST_UTIL_H_
#define ACCORD_AGENT_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/disclosure.h"
#include "agent/local_api.h"
#include "agent/store.h"
#include "agent/test_data.h"
#include "gtest/gtest.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"

namespace accord::agent::testing {

inline std::string FreshDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/agent_", tag, "_", getpid(), "_",
                   counter.fetch_add(1));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The subject S-1 the agent tests hold: Zoë, with the identifiers her
// tokens derive from.
inline accord::v1::UpsertSubjectRequest ZoeSubject() {
  accord::v1::UpsertSubjectRequest s;
  s.mutable_subject()->set_local_id("S-1");
  auto& fields = *s.mutable_subject()->mutable_fields();
  fields["given_name"] = "Zoë";
  fields["family_name"] = "O'Brien-Smith";
  fields["date_of_birth"] = "1990-03-07";
  fields["postcode"] = "ls6 2ab";
  return s;
}

// Everything an agent for vol-a needs, on a real SQLite store.
struct AgentFixture {
  explicit AgentFixture(const std::string& tag) : clock(TestNow()) {
    dir = FreshDir(tag);
    WriteText(dir + "/partnership.textproto", kPartnershipText);
    WriteText(dir + "/isa.textproto", kAgreementText);
    auto p = PartnershipDirectory::Load(dir + "/partnership.textproto");
    EXPECT_TRUE(p.ok()) << p.status();
    partnership = *p;
    auto e = policy::Engine::Create(dir + "/partnership.textproto",
                                    {dir + "/isa.textproto"}, &clock);
    EXPECT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
    auto s = AgentStore::Open(dir + "/agent.db");
    EXPECT_TRUE(s.ok()) << s.status();
    store = std::move(*s);
    auto k = linkage::LinkageKey::FromBytes(std::string(32, 'k'));
    EXPECT_TRUE(k.ok());
    key = std::make_unique<linkage::LinkageKey>(std::move(*k));
    discloser = std::make_unique<Discloser>(
        "vol-a", partnership, store.get(), engine.get(), kPseudonymKey, &clock);
    local = std::make_unique<LocalApi>("vol-a", "test.accord", store.get(),
                                       key.get(), &clock, partnership.get());
  }
  ~AgentFixture() { std::filesystem::remove_all(dir); }

  static constexpr char kPseudonymKey[] = "pseudonym-key-of-vol-a-32-bytes!";
  std::string dir;
  FakeClock clock;
  std::shared_ptr<const PartnershipDirectory> partnership;
  std::unique_ptr<policy::Engine> engine;
  std::unique_ptr<AgentStore> store;
  std::unique_ptr<linkage::LinkageKey> key;
  std::unique_ptr<Discloser> discloser;
  std::unique_ptr<LocalApi> local;
};

}  // namespace accord::agent::testing

#endif  // ACCORD_AGENT_TEST_UTIL_H_
