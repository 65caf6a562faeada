// The load generator against a real agent and a real gateway for about a
// second each (bench/run.sh relies on it): every call answers the disclosure,
// and every query it sent through the gateway is in the audit log.

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

// Runs loadgen with `args`; returns its key=value report.
std::map<std::string, std::string> Loadgen(const TestPartnership& p,
                                           const std::string& args) {
  const std::string out = p.dir() + "/logs/loadgen.out";
  const int rc = RunCommand(
      absl::StrCat(BinDir(), "/loadgen --pki '", p.pki(), "' --partnership '",
                   p.dir(), "/partnership.textproto' --agreements '", p.dir(),
                   "/agreements/police-dasv.textproto' --linkage-key '",
                   p.dir(), "/keys/linkage.key' --subjects 20 ", args),
      out);
  std::FILE* f = std::fopen(out.c_str(), "r");
  std::string text;
  if (f != nullptr) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  EXPECT_EQ(rc, 0) << text;
  std::map<std::string, std::string> report;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "loadgen ")) continue;
    for (absl::string_view kv : absl::StrSplit(line, ' ')) {
      std::pair<std::string, std::string> p2 =
          absl::StrSplit(kv, absl::MaxSplits('=', 1));
      if (!p2.second.empty()) report[p2.first] = p2.second;
    }
  }
  EXPECT_FALSE(report.empty()) << text;
  return report;
}

int64_t Number(const std::map<std::string, std::string>& report,
               const std::string& key) {
  int64_t v = -1;
  auto it = report.find(key);
  if (it == report.end() || !absl::SimpleAtoi(it->second, &v)) return -1;
  return v;
}

TEST(LoadgenSmokeTest, DisclosesDirectlyAndThroughTheGatewayWithoutErrors) {
  // As bench/run.sh does: the load of one organisation is not rate-limited.
  auto p = TestPartnership::Create(
      [](accord::v1::GatewayConfig* gw) { gw->clear_rate_limit(); });
  ASSERT_TRUE(p.ok()) << p.status();
  TestPartnership& partnership = **p;
  ASSERT_TRUE(partnership.StartAgent("womens-centre").ok());
  ASSERT_TRUE(partnership.StartGateway().ok());

  const std::string dataset = partnership.dir() + "/logs/bench.textproto";
  ASSERT_EQ(RunCommand(absl::StrCat(BinDir(), "/loadgen --write-dataset '",
                                    dataset, "' --subjects 20"),
                       partnership.dir() + "/logs/dataset.out"),
            0);
  std::string output;
  ASSERT_EQ(partnership.Accordctl(
                absl::StrCat("agent load '", dataset,
                             "' --as org-womens-centre --agent ",
                             partnership.local_address("womens-centre")),
                &output),
            0)
      << output;
  EXPECT_NE(output.find("loaded 20 subjects"), std::string::npos) << output;

  const std::string common =
      " --concurrency 4 --channels 2 --duration 1 --warmup 0.2";
  auto direct = Loadgen(
      partnership,
      absl::StrCat("--target direct --address ",
                   partnership.holder_address("womens-centre"), common));
  EXPECT_EQ(direct["target"], "direct");
  EXPECT_GT(Number(direct, "completed"), 0);
  EXPECT_EQ(Number(direct, "errors"), 0);

  // --watch-pid reads any process's CPU time; PID 1 always exists here, and
  // only the presence of the figure is checked.
  auto gateway =
      Loadgen(partnership, absl::StrCat("--target gateway --address ",
                                        partnership.gateway_address(), common,
                                        " --watch-pid 1"));
  EXPECT_EQ(gateway["target"], "gateway");
  const int64_t completed = Number(gateway, "completed");
  EXPECT_GT(completed, 0);
  EXPECT_EQ(Number(gateway, "errors"), 0);
  EXPECT_NE(gateway.find("server_cpu_s"), gateway.end());

  // Every answered query was audited before its answer was released.
  auto db = sqlite::Database::Open(partnership.audit_db());
  ASSERT_TRUE(db.ok()) << db.status();
  auto count = (*db)->Prepare(
      "SELECT count(*) FROM entries WHERE caller_org = 'police'");
  ASSERT_TRUE(count.ok()) << count.status();
  auto step = count->Next();
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_GE(count->Int(0), completed);
}

}  // namespace
}  // namespace accord::testing
