// The gateway's and the agent's settings: each bad value refused at load
// with file:line:column, the field and its allowed range; TLS files checked
// as they will be used (key matches certificate, certificate identity, CRL),
// against a real partnership PKI made by deploy/pki.
#include "runtime/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "runtime/test_pki.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

constexpr char kPartnership[] = R"(id: "t.accord"
name: "Test partnership"
organisations {
  id: "police"
  name: "Police"
  kind: ORG_KIND_POLICE
  contact { name: "Desk" }
  agent_address: "127.0.0.1:17501"
}
organisations {
  id: "refuge"
  name: "Refuge"
  kind: ORG_KIND_VOLUNTARY
  contact { name: "Desk" }
  agent_address: "127.0.0.1:17503"
}
purposes { id: "safeguarding" description: "Safeguarding" }
)";

// Line numbers matter: tests below name them.
constexpr char kGateway[] = R"(partnership_file: "partnership.textproto"
agreement_files: "agreements/none.textproto"
listen_address: "127.0.0.1:17443"
tls {
  ca_file: "pki/ca.pem"
  cert_file: "pki/gateway.pem"
  key_file: "pki/gateway.key"
  crl_file: "pki/crl.pem"
}
audit_db: "state/audit.db"
audit_signing_key_file: "pki/audit-signing.key"
group_commit { max_delay {} max_batch: 1024 }
holder_deadline { seconds: 2 }
rate_limit { requests_per_second: 50 burst: 100 max_in_flight: 32 }
referral_delivery { initial_backoff { nanos: 200000000 } max_backoff { seconds: 2 } }
)";

constexpr char kAgent[] = R"(org_id: "refuge"
partnership_file: "partnership.textproto"
agreement_files: "agreements/none.textproto"
holder_listen_address: "127.0.0.1:17503"
local_listen_address: "127.0.0.1:17603"
tls {
  ca_file: "pki/ca.pem"
  cert_file: "pki/agent-refuge.pem"
  key_file: "pki/agent-refuge.key"
  crl_file: "pki/crl.pem"
}
store_db: "state/agent.db"
audit_db: "state/agent-audit.db"
audit_signing_key_file: "pki/audit-signing-police.key"
linkage_key_file: "keys/linkage.key"
pseudonym_key_file: "keys/pseudonym.key"
gateway_address: "127.0.0.1:17443"
)";

class SettingsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTestPki("accord-settings", "t.accord",
                                                {"police", "refuge"}));
    ASSERT_FALSE(dir_->empty());
    // The PKI directory becomes pki/ beside the configuration files.
    ASSERT_EQ(testing::RunQuietly(absl::StrCat(
                  "mkdir -p ", *dir_, "/cfg && ln -s ", *dir_, " ", *dir_,
                  "/cfg/pki")),
              0);
    std::ofstream(*dir_ + "/cfg/partnership.textproto") << kPartnership;
  }
  static void TearDownTestSuite() {
    testing::RemoveTestPki(*dir_);
    delete dir_;
  }

  // Writes `text` with each {from, to} replaced; returns the file's path.
  static std::string Write(
      const std::string& name, const std::string& text,
      std::initializer_list<std::pair<absl::string_view, absl::string_view>>
          edits = {}) {
    const std::string path = absl::StrCat(*dir_, "/cfg/", name);
    std::ofstream(path) << absl::StrReplaceAll(text, edits);
    return path;
  }

  static absl::Status Gateway(
      std::initializer_list<std::pair<absl::string_view, absl::string_view>>
          edits) {
    return LoadGatewaySettings(Write("gateway.textproto", kGateway, edits))
        .status();
  }
  static absl::Status Agent(
      std::initializer_list<std::pair<absl::string_view, absl::string_view>>
          edits) {
    return LoadAgentSettings(Write("agent.textproto", kAgent, edits)).status();
  }

  static std::string* dir_;
};
std::string* SettingsTest::dir_ = nullptr;

// Each check: the status is InvalidArgument and its message has `what`.
void ExpectRefused(const absl::Status& s, const std::string& what) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(what));
}

TEST_F(SettingsTest, GoodConfigurationsLoadAsTypedValues) {
  auto gw = LoadGatewaySettings(Write("gateway.textproto", kGateway));
  ASSERT_TRUE(gw.ok()) << gw.status();
  EXPECT_EQ(gw->partnership->id(), "t.accord");
  EXPECT_EQ(gw->listen_address, "127.0.0.1:17443");
  EXPECT_EQ(gw->tls.crl_file(), *dir_ + "/cfg/pki/crl.pem");
  EXPECT_EQ(gw->holder_deadline, absl::Seconds(2));
  EXPECT_EQ(gw->group_commit_max_delay, absl::ZeroDuration());
  EXPECT_EQ(gw->group_commit_max_batch, 1024u);
  EXPECT_EQ(gw->rate_limit.requests_per_second(), 50u);
  EXPECT_EQ(gw->referral_initial_backoff, absl::Milliseconds(200));
  EXPECT_EQ(gw->referral_max_backoff, absl::Seconds(2));
  EXPECT_EQ(gw->referral_db, *dir_ + "/cfg/state/gateway-referrals.db");

  auto agent = LoadAgentSettings(Write("agent.textproto", kAgent));
  ASSERT_TRUE(agent.ok()) << agent.status();
  EXPECT_EQ(agent->org_id, "refuge");
  EXPECT_EQ(agent->gateway_address, "127.0.0.1:17443");
  EXPECT_EQ(agent->store_db, *dir_ + "/cfg/state/agent.db");

  // Optional settings left out stay absent.
  auto bare = LoadGatewaySettings(Write(
      "bare.textproto", kGateway,
      {{"group_commit { max_delay {} max_batch: 1024 }\n", ""},
       {"holder_deadline { seconds: 2 }\n", ""},
       {"rate_limit { requests_per_second: 50 burst: 100 max_in_flight: 32 }\n",
        ""},
       {"referral_delivery { initial_backoff { nanos: 200000000 } "
        "max_backoff { seconds: 2 } }\n",
        ""}}));
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_FALSE(bare->holder_deadline.has_value());
  EXPECT_FALSE(bare->group_commit_max_batch.has_value());
  EXPECT_EQ(bare->rate_limit.requests_per_second(), 0u);
}

TEST_F(SettingsTest, PortOutOfRangeIsRefusedNotWrapped) {
  ExpectRefused(
      Gateway({{"127.0.0.1:17443", "127.0.0.1:99999"}}),
      "gateway.textproto:3:1: field listen_address \"127.0.0.1:99999\" has "
      "port 99999, out of range: the port must be from 0 to 65535");
  ExpectRefused(Gateway({{"127.0.0.1:17443", "127.0.0.1"}}),
                "field listen_address \"127.0.0.1\" must be host:port");
  ExpectRefused(Gateway({{"127.0.0.1:17443", "127.0.0.1:http"}}),
                "has no port number; the port must be from 0 to 65535");
  ExpectRefused(Gateway({{"127.0.0.1:17443", "::1:17443"}}),
                "an IPv6 host in brackets");
  EXPECT_TRUE(Gateway({{"127.0.0.1:17443", "[::1]:17443"}}).ok());
  EXPECT_TRUE(Gateway({{"127.0.0.1:17443", "127.0.0.1:0"}}).ok());

  ExpectRefused(
      Agent({{"127.0.0.1:17603", "127.0.0.1:65536"}}),
      "agent.textproto:5:1: field local_listen_address \"127.0.0.1:65536\" "
      "has port 65536, out of range");
  // A port to dial cannot be 0.
  ExpectRefused(Agent({{"gateway_address: \"127.0.0.1:17443\"",
                        "gateway_address: \"127.0.0.1:0\""}}),
                "field gateway_address \"127.0.0.1:0\" has port 0, out of "
                "range: the port must be from 1 to 65535");
  ExpectRefused(Agent({{"127.0.0.1:17603", "127.0.0.1:17503"}}),
                "field local_listen_address is the holder API's address too");
}

TEST_F(SettingsTest, PartnershipAgentAddressesAreChecked) {
  const std::string bad = absl::StrReplaceAll(
      kPartnership, {{"127.0.0.1:17503", "127.0.0.1:70000"}});
  Write("partnership-bad.textproto", bad);
  ExpectRefused(
      Gateway({{"partnership.textproto", "partnership-bad.textproto"}}),
      "partnership-bad.textproto:15:3: field organisations[1].agent_address "
      "\"127.0.0.1:70000\" has port 70000, out of range: the port must be "
      "from 1 to 65535");
}

TEST_F(SettingsTest, DurationsOutsideTheirRangeAreRefused) {
  ExpectRefused(Gateway({{"holder_deadline { seconds: 2 }",
                          "holder_deadline { seconds: -2 }"}}),
                "gateway.textproto:13:1: field holder_deadline is -2s; it must "
                "be from 10ms to 5m");
  ExpectRefused(Gateway({{"holder_deadline { seconds: 2 }",
                          "holder_deadline { seconds: 1000000000000 }"}}),
                "field holder_deadline is 1000000000000s 0ns (not a valid "
                "duration); it must be from 10ms to 5m");
  ExpectRefused(Gateway({{"holder_deadline { seconds: 2 }",
                          "holder_deadline { seconds: 3600 }"}}),
                "field holder_deadline is 1h; it must be from 10ms to 5m");
  ExpectRefused(Gateway({{"holder_deadline { seconds: 2 }",
                          "holder_deadline { }"}}),
                "field holder_deadline is 0; it must be from 10ms to 5m");
  ExpectRefused(Gateway({{"holder_deadline { seconds: 2 }",
                          "holder_deadline { seconds: 1 nanos: -5 }"}}),
                "(not a valid duration)");
  ExpectRefused(
      Gateway({{"initial_backoff { nanos: 200000000 }",
                "initial_backoff { seconds: -1 }"}}),
      "field referral_delivery.initial_backoff is -1s; it must be from 10ms "
      "to 1h");
  ExpectRefused(Gateway({{"max_backoff { seconds: 2 }",
                          "max_backoff { nanos: 100000000 }"}}),
                "field referral_delivery.max_backoff is 100ms; it must be "
                "from 200ms to 24h");
  ExpectRefused(Gateway({{"max_delay {}", "max_delay { seconds: 5 }"}}),
                "field group_commit.max_delay is 5s; it must be from 0 to 1s");
}

TEST_F(SettingsTest, CountsAndSizesOutsideTheirRangeAreRefused) {
  ExpectRefused(Gateway({{"max_batch: 1024", "max_batch: 0"}}),
                "gateway.textproto:12:29: field group_commit.max_batch is 0; "
                "it must be from 1 to 65536");
  ExpectRefused(Gateway({{"max_batch: 1024", "max_batch: 4000000000"}}),
                "field group_commit.max_batch is 4000000000; it must be from "
                "1 to 65536");
  ExpectRefused(Gateway({{"requests_per_second: 50", "requests_per_second: 0"}}),
                "field rate_limit.requests_per_second is 0; it must be from 1 "
                "to 100000");
  ExpectRefused(Gateway({{"burst: 100", "burst: 0"}}),
                "field rate_limit.burst is 0; it must be from 1 to 1000000");
  ExpectRefused(Gateway({{"max_in_flight: 32", "max_in_flight: 1000000"}}),
                "field rate_limit.max_in_flight is 1000000; it must be from 1 "
                "to 100000");
  // Every error at once.
  const absl::Status both = Gateway({{"burst: 100", "burst: 0"},
                                     {"max_in_flight: 32", "max_in_flight: 0"}});
  ExpectRefused(both, "rate_limit.burst is 0");
  ExpectRefused(both, "rate_limit.max_in_flight is 0");
}

TEST_F(SettingsTest, KeyThatIsNotTheCertificatesStopsStartUp) {
  ExpectRefused(Gateway({{"pki/gateway.key", "pki/agent-police.key"}}),
                "gateway.textproto:7:3: field tls.key_file: " + *dir_ +
                    "/cfg/pki/agent-police.key is not the private key of the "
                    "certificate " +
                    *dir_ + "/cfg/pki/gateway.pem");
  Write("not-a-key.key", "not a key\n");
  ASSERT_EQ(testing::RunQuietly(
                absl::StrCat("chmod 600 ", *dir_, "/cfg/not-a-key.key")),
            0);
  ExpectRefused(Gateway({{"pki/gateway.key", "not-a-key.key"}}),
                "not-a-key.key: no PEM private key found");
  ExpectRefused(Gateway({{"pki/gateway.key", "pki/ca.pem"}}),
                "secret file is accessible by group or others");
}

TEST_F(SettingsTest, CertificateWithAnotherIdentityStopsStartUp) {
  // The gateway with an organisation's certificate (and its key).
  ExpectRefused(Gateway({{"pki/gateway.", "pki/org-police."}}),
                "field tls.cert_file: " + *dir_ +
                    "/cfg/pki/org-police.pem carries the identity "
                    "spiffe://t.accord/org/police; the gateway must hold "
                    "spiffe://t.accord/gateway");
  // An agent with another organisation's agent certificate.
  ExpectRefused(Agent({{"pki/agent-refuge.", "pki/agent-police."}}),
                "agent.textproto:8:3: field tls.cert_file: " + *dir_ +
                    "/cfg/pki/agent-police.pem carries the identity "
                    "spiffe://t.accord/agent/police; the agent of refuge must "
                    "hold spiffe://t.accord/agent/refuge");
  // An agent with its organisation's (not its agent's) certificate.
  ExpectRefused(Agent({{"pki/agent-refuge.", "pki/org-refuge."}}),
                "carries the identity spiffe://t.accord/org/refuge; the agent "
                "of refuge must hold spiffe://t.accord/agent/refuge");
  // No URI SAN at all.
  ExpectRefused(Agent({{"pki/agent-refuge.", "pki/no-uri-org-police."}}),
                "carries the identity (none)");
  ExpectRefused(Agent({{"org_id: \"refuge\"", "org_id: \"shelter\""}}),
                "field org_id 'shelter' is not an organisation of the "
                "partnership");
}

TEST_F(SettingsTest, CrlIsRequiredUnlessAllowNoCrlSaysSo) {
  ExpectRefused(Gateway({{"  crl_file: \"pki/crl.pem\"\n", ""}}),
                "field tls.crl_file is required: without the partnership CRL "
                "revoked certificates are accepted (to run without one, say "
                "allow_no_crl: true)");
  ExpectRefused(Agent({{"pki/crl.pem", "pki/missing-crl.pem"}}),
                "agent.textproto:10:3: field tls.crl_file: " + *dir_ +
                    "/cfg/pki/missing-crl.pem: No such file or directory");
  auto allowed = LoadGatewaySettings(
      Write("gateway.textproto", kGateway,
            {{"crl_file: \"pki/crl.pem\"", "allow_no_crl: true"}}));
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_TRUE(allowed->tls.crl_file().empty());
  ExpectRefused(Gateway({{"crl_file: \"pki/crl.pem\"",
                          "crl_file: \"pki/crl.pem\" allow_no_crl: true"}}),
                "field tls.allow_no_crl cannot be set together with "
                "tls.crl_file");
}

}  // namespace
}  // namespace accord
