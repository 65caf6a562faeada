// Configuration that must not start: the real accord-gateway and
// accord-agent, each given one bad setting (a port out of range, a negative
// or absurd duration, a zero batch, a key that is not the certificate's, a
// certificate of another identity, a missing CRL), exit with status 1 and a
// message naming the file, line, field and what is allowed, before serving
// anything. `allow_no_crl: true` starts, with a warning.

#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/crypto.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using Edits = std::vector<std::pair<std::string, std::string>>;

class ConfigIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
  }
  static void TearDownTestSuite() { delete partnership_; }

  // Runs `program` with its configuration `base` (a file the harness wrote)
  // changed by `edits`; its exit status (nullopt if it kept running) and
  // log.
  static std::pair<std::optional<int>, std::string> Start(
      const std::string& program, const std::string& base, const Edits& edits,
      const std::string& name) {
    const std::string dir = partnership_->dir();
    auto text = ReadFile(absl::StrCat(dir, "/", base));
    EXPECT_TRUE(text.ok()) << text.status();
    std::string edited = text.ok() ? *text : "";
    for (const auto& [from, to] : edits) {
      EXPECT_THAT(edited, HasSubstr(from)) << base;
      edited = absl::StrReplaceAll(edited, {{from, to}});
    }
    const std::string config = absl::StrCat(dir, "/", name, ".textproto");
    std::ofstream(config) << edited;
    Process process(name, {BinDir() + "/" + program, "--config", config},
                    absl::StrCat(dir, "/logs/", name, ".log"));
    EXPECT_TRUE(process.Start().ok());
    std::optional<int> status = process.WaitForExit(20000);
    return {status, process.Log()};
  }

  // `program` with `edits` to `base` must exit 1 saying `message`, naming
  // its configuration file and line, without ever logging `ready`.
  static void ExpectRefused(const std::string& program, const std::string& base,
                            const std::string& ready, const std::string& name,
                            const Edits& edits, const std::string& message) {
    SCOPED_TRACE(name);
    const auto [status, log] = Start(program, base, edits, name);
    EXPECT_EQ(status, 1) << log;
    EXPECT_THAT(log, HasSubstr(message));
    EXPECT_THAT(log, HasSubstr(name + ".textproto:"));  // file:line
    EXPECT_THAT(log, Not(HasSubstr(ready)));
  }
  static void ExpectGatewayRefused(const std::string& name, const Edits& edits,
                                   const std::string& message) {
    ExpectRefused("accord-gateway", "gateway.textproto", "serving", name, edits,
                  message);
  }
  static void ExpectAgentRefused(const std::string& name, const Edits& edits,
                                 const std::string& message) {
    ExpectRefused("accord-agent", "agent-refuge.textproto",
                  "local API on port", name, edits, message);
  }

  static std::string Id(const std::string& path) {
    return absl::StrCat("spiffe://", partnership_->partnership_id(), path);
  }

  static TestPartnership* partnership_;
};

TestPartnership* ConfigIntegrationTest::partnership_ = nullptr;

TEST_F(ConfigIntegrationTest, GatewayRefusesValuesOutOfRange) {
  const std::string listen = partnership_->gateway_address();
  ExpectGatewayRefused(
      "gateway-port", {{listen, "127.0.0.1:99999"}},
      "field listen_address \"127.0.0.1:99999\" has port 99999, out of "
      "range: the port must be from 0 to 65535");
  ExpectGatewayRefused(
      "gateway-deadline", {{"holder_deadline {\n  seconds: 2\n}",
                            "holder_deadline {\n  seconds: -2\n}"}},
      "field holder_deadline is -2s; it must be from 10ms to 5m");
  ExpectGatewayRefused(
      "gateway-huge-deadline", {{"holder_deadline {\n  seconds: 2\n}",
                                 "holder_deadline {\n  seconds: 1000000000000\n}"}},
      "field holder_deadline is 1000000000000s 0ns (not a valid duration)");
  ExpectGatewayRefused(
      "gateway-backoff", {{"initial_backoff {\n    nanos: 200000000\n  }",
                           "initial_backoff {\n    seconds: -1\n  }"}},
      "field referral_delivery.initial_backoff is -1s; it must be from 10ms "
      "to 1h");
  ExpectGatewayRefused("gateway-batch",
                       {{"max_batch: 1024", "max_batch: 0"}},
                       "field group_commit.max_batch is 0; it must be from 1 "
                       "to 65536");
  ExpectGatewayRefused(
      "gateway-rate", {{"requests_per_second: 50", "requests_per_second: 0"}},
      "field rate_limit.requests_per_second is 0; it must be from 1 to "
      "100000");
}

TEST_F(ConfigIntegrationTest, GatewayRefusesTlsFilesItCannotServeWith) {
  ExpectGatewayRefused(
      "gateway-key", {{"pki/gateway.key", "pki/agent-police.key"}},
      "pki/agent-police.key is not the private key of the certificate");
  ExpectGatewayRefused(
      "gateway-identity", {{"pki/gateway.", "pki/org-police."}},
      absl::StrCat("pki/org-police.pem carries the identity ",
                   Id("/org/police"), "; the gateway must hold ",
                   Id("/gateway")));
  ExpectGatewayRefused("gateway-no-crl", {{"  crl_file: \"pki/crl.pem\"\n", ""}},
                       "field tls.crl_file is required");
  ExpectGatewayRefused("gateway-missing-crl",
                       {{"pki/crl.pem", "pki/no-such-crl.pem"}},
                       "pki/no-such-crl.pem: No such file or directory");
}

TEST_F(ConfigIntegrationTest, AgentRefusesACertificateOfAnotherIdentity) {
  // Another organisation's agent certificate (with its key).
  ExpectAgentRefused(
      "agent-other-agent", {{"pki/agent-refuge.", "pki/agent-police."}},
      absl::StrCat("carries the identity ", Id("/agent/police"),
                   "; the agent of refuge must hold ", Id("/agent/refuge")));
  // The organisation's own certificate, not its agent's.
  ExpectAgentRefused(
      "agent-org-cert", {{"pki/agent-refuge.", "pki/org-refuge."}},
      absl::StrCat("carries the identity ", Id("/org/refuge"),
                   "; the agent of refuge must hold ", Id("/agent/refuge")));
  ExpectAgentRefused("agent-key", {{"pki/agent-refuge.key", "pki/agent-police.key"}},
                     "is not the private key of the certificate");
  ExpectAgentRefused("agent-missing-crl",
                     {{"pki/crl.pem", "pki/no-such-crl.pem"}},
                     "pki/no-such-crl.pem: No such file or directory");
  ExpectAgentRefused(
      "agent-port",
      {{partnership_->holder_address("refuge"), "127.0.0.1:70000"}},
      "field holder_listen_address \"127.0.0.1:70000\" has port 70000, out "
      "of range");
}

TEST_F(ConfigIntegrationTest, AllowNoCrlInSoManyWordsStartsWithAWarning) {
  const std::string dir = partnership_->dir();
  auto text = ReadFile(dir + "/gateway.textproto");
  ASSERT_TRUE(text.ok()) << text.status();
  std::ofstream(dir + "/gateway-allow-no-crl.textproto")
      << absl::StrReplaceAll(*text, {{"crl_file: \"pki/crl.pem\"",
                                      "allow_no_crl: true"}});
  Process gateway("gateway-allow-no-crl",
                  {BinDir() + "/accord-gateway", "--config",
                   dir + "/gateway-allow-no-crl.textproto"},
                  dir + "/logs/gateway-allow-no-crl.log");
  ASSERT_TRUE(gateway.Start().ok());
  ASSERT_TRUE(gateway.WaitForLog("serving", 20000).ok()) << gateway.Log();
  EXPECT_THAT(gateway.Log(), HasSubstr("tls.allow_no_crl is set: revoked "
                                       "certificates will be accepted"));
  gateway.Stop();
}

}  // namespace
}  // namespace accord::testing
