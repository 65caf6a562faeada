// Security of the running system, against a real gateway and real agents on
// loopback with certificates from deploy/pki:
//  - certificates that must be refused (expired, not yet valid, another CA,
//    wrong key usage, no SAN identity, revoked, revoked after start-up) on
//    the gateway and on the agents' holder and local APIs, refusals audited
//    (handshake refusals too, rate-limited);
//  - certificate rotation and CRL changes without a restart or a failed call;
//  - private keys with loose permissions refused at start-up;
//  - hostile clients (garbage bytes, oversized and invalid messages, wrong
//    content type, a flood from one organisation) while others are served;
//  - no record value or secret in any process log.

#include <grpcpp/generic/generic_stub.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/crypto.h"
#include "runtime/identity.h"
#include "runtime/tls.h"
#include "tests/checked.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SecurityIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create([](accord::v1::GatewayConfig* gw) {
      gw->mutable_rate_limit()->set_requests_per_second(20);
      gw->mutable_rate_limit()->set_burst(40);
      gw->mutable_rate_limit()->set_max_in_flight(8);
      // Longer than any caller deadline below, so that only the caller's
      // deadline can end the wait for a silent holder.
      gw->mutable_holder_deadline()->set_seconds(30);
    });
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    auto s = partnership_->StartAll();
    ASSERT_TRUE(s.ok()) << s;
    s = partnership_->LoadExampleData("rape-crisis");
    ASSERT_TRUE(s.ok()) << s;
    auto tokens = partnership_->TokensOf("rape-crisis", "RC-2041");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    zoe_ = new std::vector<accord::v1::SubjectToken>(*tokens);
  }
  static void TearDownTestSuite() {
    delete partnership_;
    delete zoe_;
  }

  static void Deadline(grpc::ClientContext* ctx, int seconds = 10) {
    PrepareCall(ctx, seconds);
  }

  static std::string Pki(const std::string& file) {
    return partnership_->pki() + "/" + file;
  }
  static std::string GatewayId() {
    return SpiffeId(partnership_->partnership_id(), PrincipalKind::kGateway);
  }
  static std::string AgentId(const std::string& org) {
    return SpiffeId(partnership_->partnership_id(), PrincipalKind::kAgent, org);
  }

  // A gateway channel presenting DIR/<cert>.pem (test certificates too).
  static std::shared_ptr<grpc::Channel> GatewayAs(const std::string& cert) {
    return partnership_->Channel(partnership_->gateway_address(), Pki("ca.pem"),
                                 Pki(cert + ".pem"), Pki(cert + ".key"),
                                 GatewayId());
  }

  // Issues DIR/<name>.pem from the partnership CA.
  static void Issue(const std::string& name, const std::string& subject,
                    const std::string& san, const std::string& eku) {
    const std::string dir = partnership_->pki();
    const int rc =
        RunCommand(absl::StrCat("bash -c 'source ", SourceDir(),
                                "/deploy/pki/pki-lib.sh && pki_env ", dir,
                                " && pki_issue ", dir, " ", name, " ", subject,
                                " ", san, " ", eku, " 30'"),
                   partnership_->dir() + "/logs/test-pki.log");
    ASSERT_EQ(rc, 0) << Slurp(partnership_->dir() + "/logs/test-pki.log");
  }
  static void Revoke(const std::string& name) {
    const int rc =
        RunCommand(absl::StrCat(SourceDir(), "/deploy/pki/revoke.sh --out ",
                                partnership_->pki(), " ", Pki(name + ".pem")),
                   partnership_->dir() + "/logs/test-pki.log");
    ASSERT_EQ(rc, 0) << Slurp(partnership_->dir() + "/logs/test-pki.log");
  }

  accord::v1::QueryRequest ZoeQuery(const std::string& request_id) {
    accord::v1::QueryRequest q;
    q.set_request_id(request_id);
    q.set_purpose("safeguarding");
    q.set_mode(accord::v1::QUERY_MODE_RECORDS);
    q.add_holders("rape-crisis");
    for (const auto& t : *zoe_) *q.add_subjects() = t;
    return q;
  }

  grpc::Status QueryAs(const std::string& cert, const std::string& request_id,
                       accord::v1::QueryResponse* resp = nullptr) {
    accord::v1::QueryResponse scratch;
    auto stub = accord::v1::Gateway::NewStub(GatewayAs(cert));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    return stub->Query(&ctx, ZoeQuery(request_id), resp ? resp : &scratch);
  }

  // The police system is still served: the gateway survived whatever came
  // before.
  void ExpectPoliceServed(const std::string& request_id) {
    accord::v1::QueryResponse resp;
    auto status = QueryAs("org-police", request_id, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(resp.answers_size(), 1);
    EXPECT_EQ(resp.answers(0).status(), accord::v1::HOLDER_STATUS_ANSWERED)
        << resp.answers(0).detail();
    EXPECT_TRUE(partnership_->gateway()->Running());
  }

  // Every audit entry, read through the auditor API.
  std::vector<accord::v1::AuditEntry> AllAudit() {
    return CheckedAudit(partnership_->SearchAudit());
  }

  // The denial audited for `request_id`, or null.
  std::unique_ptr<accord::v1::AuditEntry> AuditedDenial(
      const std::string& request_id) {
    for (auto& e : AllAudit()) {
      if (e.request_id() == request_id &&
          e.decision() == accord::v1::AUDIT_DECISION_DENY) {
        return std::make_unique<accord::v1::AuditEntry>(std::move(e));
      }
    }
    return nullptr;
  }

  // The gateway's audit entries for refused TLS handshakes.
  std::vector<accord::v1::AuditEntry> HandshakeDenials() {
    std::vector<accord::v1::AuditEntry> out;
    for (auto& e : AllAudit()) {
      if (e.method() == "tls-handshake") out.push_back(std::move(e));
    }
    return out;
  }

  // `openssl x509 -fingerprint -sha256` of DIR/<cert>.pem: lower-case hex.
  static std::string Fingerprint(const std::string& cert) {
    const std::string out = partnership_->dir() + "/logs/fingerprint.out";
    EXPECT_EQ(RunCommand(absl::StrCat("openssl x509 -noout -fingerprint ",
                                      "-sha256 -in ", Pki(cert + ".pem")),
                         out),
              0);
    std::string text = Slurp(out);  // appended to: the last line is ours
    text = text.substr(text.rfind('=') + 1);
    absl::StripAsciiWhitespace(&text);
    return absl::AsciiStrToLower(absl::StrReplaceAll(text, {{":", ""}}));
  }

  static TestPartnership* partnership_;
  static std::vector<accord::v1::SubjectToken>* zoe_;
};

TestPartnership* SecurityIntegrationTest::partnership_ = nullptr;
std::vector<accord::v1::SubjectToken>* SecurityIntegrationTest::zoe_ = nullptr;

// --- Certificates ----------------------------------------------------------

TEST_F(SecurityIntegrationTest, CertificatesThatFailVerificationAreRefused) {
  // Refused by the TLS handshake: no call reaches Accord.
  for (const char* cert : {"expired-org-police", "not-yet-valid-org-police",
                           "rogue-org-police", "server-only-org-police"}) {
    SCOPED_TRACE(cert);
    accord::v1::QueryResponse resp;
    auto status = QueryAs(cert, absl::StrCat("cert-", cert), &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << status.error_message();
    EXPECT_EQ(resp.answers_size(), 0);
    // Nor on the agents' ports.
    auto holder = accord::v1::AgentLocal::NewStub(partnership_->Channel(
        partnership_->local_address("police"), Pki("ca.pem"),
        Pki(std::string(cert) + ".pem"), Pki(std::string(cert) + ".key"),
        AgentId("police")));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::SubjectTokensRequest req;
    req.set_subject_local_id("P-1");
    accord::v1::SubjectTokensResponse tokens;
    EXPECT_EQ(holder->SubjectTokens(&ctx, req, &tokens).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  ExpectPoliceServed("after-bad-certs");
}

TEST_F(SecurityIntegrationTest, HandshakeRefusalsAreAuditedWithTheirReason) {
  // Accord verifies client certificates itself, so a handshake it refuses is
  // in the gateway's audit log: the reason, and what the certificate claimed
  // to be, marked unverified.
  const std::string claimed =
      absl::StrCat("spiffe://", partnership_->partnership_id(), "/org/police");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"expired-org-police", "certificate expired at 20"},
      {"not-yet-valid-org-police", "certificate not valid before 20"},
      {"rogue-org-police", "unknown CA"},
      {"server-only-org-police", "no clientAuth usage"},
  };
  for (const auto& [cert, reason] : cases) {
    SCOPED_TRACE(cert);
    const size_t before = HandshakeDenials().size();
    auto status = QueryAs(cert, absl::StrCat("handshake-", cert));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << status.error_message();
    const std::string fingerprint = Fingerprint(cert);
    std::unique_ptr<accord::v1::AuditEntry> found;
    // Appended as the handshake fails; durable a group commit later.
    for (int i = 0; i < 50 && found == nullptr; ++i) {
      auto entries = HandshakeDenials();
      for (size_t e = before; e < entries.size(); ++e) {
        if (absl::StrContains(entries[e].detail(), fingerprint)) {
          found = std::make_unique<accord::v1::AuditEntry>(entries[e]);
        }
      }
      if (found == nullptr)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->decision(), accord::v1::AUDIT_DECISION_DENY);
    EXPECT_THAT(found->deny_reason(), ::testing::StartsWith(reason));
    EXPECT_EQ(found->caller(), absl::StrCat("unverified:", claimed));
    EXPECT_EQ(found->caller_org(), "");  // attributed to no organisation
    EXPECT_THAT(found->detail(), HasSubstr("CN=police"));
    EXPECT_THAT(partnership_->gateway()->Log(),
                HasSubstr(absl::StrCat("TLS handshake refused: ", reason)));
  }
  // The agents log theirs (their ports are not the gateway's to audit).
  auto local = accord::v1::AgentLocal::NewStub(
      partnership_->Channel(partnership_->local_address("police"),
                            Pki("ca.pem"), Pki("rogue-org-police.pem"),
                            Pki("rogue-org-police.key"), AgentId("police")));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::SubjectTokensRequest req;
  req.set_subject_local_id("P-1");
  accord::v1::SubjectTokensResponse tokens;
  EXPECT_EQ(local->SubjectTokens(&ctx, req, &tokens).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(partnership_->agent("police")->Log(),
              HasSubstr("local API: TLS handshake refused: unknown CA"));
  ExpectPoliceServed("after-handshake-refusals");
}

TEST_F(SecurityIntegrationTest, HandshakeRefusalFloodIsBoundedInTheAuditLog) {
  // Anyone who can reach the port can fail handshakes as fast as they like;
  // the audit log takes a bounded number of entries, and says how many it
  // left out.
  const size_t before = HandshakeDenials().size();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (QueryAs("expired-org-police", absl::StrCat("flood-tls-", t, "-", i))
                .error_code() == grpc::StatusCode::UNAVAILABLE) {
          ++unavailable;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_EQ(unavailable, kThreads * kPerThread);
  ExpectPoliceServed("during-tls-flood");

  // Once the bucket has a token again, the next refusal is audited.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string last = Fingerprint("rogue-org-police");
  EXPECT_EQ(QueryAs("rogue-org-police", "after-tls-flood").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  std::vector<accord::v1::AuditEntry> entries;
  for (int i = 0; i < 50; ++i) {
    entries = HandshakeDenials();
    if (!entries.empty() && absl::StrContains(entries.back().detail(), last))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(entries.size(), before);
  ASSERT_THAT(entries.back().detail(), HasSubstr(last));

  // Every refusal is accounted for: audited, or counted in a later entry.
  int audited_flood = 0;
  uint64_t left_out = 0;
  for (size_t i = before; i < entries.size(); ++i) {
    const std::string& detail = entries[i].detail();
    if (absl::StrContains(entries[i].deny_reason(), "expired")) ++audited_flood;
    const size_t at = detail.find(" earlier handshake refusals not audited");
    if (at == std::string::npos) continue;
    const size_t from = detail.rfind(' ', at - 1) + 1;
    uint64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(detail.substr(from, at - from), &n)) << detail;
    left_out += n;
  }
  // The gateway admits 20 at once and 5 a second after that.
  EXPECT_LE(audited_flood, 20 + 5 * seconds + 1) << seconds << " s";
  EXPECT_LT(audited_flood, kThreads * kPerThread);
  EXPECT_GT(left_out, 0u);
  EXPECT_GE(audited_flood + left_out,
            static_cast<uint64_t>(kThreads * kPerThread));
  // The count rides on the first entry admitted after refusals were left
  // out; which entry that is depends on how fast the flood ran (on a slow
  // machine the bucket refills during it), so look for it among them all.
  bool count_recorded = false;
  for (size_t i = before; i < entries.size(); ++i) {
    count_recorded |= absl::StrContains(
        entries[i].detail(),
        "earlier handshake refusals not audited (rate limit)");
  }
  EXPECT_TRUE(count_recorded);
  EXPECT_THAT(partnership_->gateway()->Log(),
              HasSubstr("earlier handshake refusals not audited (rate limit)"));
}

TEST_F(SecurityIntegrationTest,
       CertificateWithoutSanIdentityIsRefusedAndAudited) {
  accord::v1::QueryResponse resp;
  auto status = QueryAs("no-uri-org-police", "no-san-attempt", &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("no URI SAN"));
  auto denial = AuditedDenial("no-san-attempt");
  ASSERT_NE(denial, nullptr);
  EXPECT_THAT(denial->deny_reason(), HasSubstr("no URI SAN"));
}

TEST_F(SecurityIntegrationTest,
       RevokedCertificateIsRefusedOnEveryPortAndAudited) {
  accord::v1::QueryResponse resp;
  auto status = QueryAs("revoked-org-police", "revoked-attempt", &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("revoked"));
  EXPECT_EQ(resp.answers_size(), 0);
  auto denial = AuditedDenial("revoked-attempt");
  ASSERT_NE(denial, nullptr);
  EXPECT_THAT(denial->deny_reason(), HasSubstr("revoked"));
  EXPECT_THAT(denial->caller(), HasSubstr("/org/police"));

  // The police agent's local API accepts org/police, but not this one.
  auto local = accord::v1::AgentLocal::NewStub(
      partnership_->Channel(partnership_->local_address("police"),
                            Pki("ca.pem"), Pki("revoked-org-police.pem"),
                            Pki("revoked-org-police.key"), AgentId("police")));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::SubjectTokensRequest req;
  req.set_subject_local_id("P-1");
  accord::v1::SubjectTokensResponse tokens;
  status = local->SubjectTokens(&ctx, req, &tokens);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("revoked"));
  ExpectPoliceServed("after-revoked");
}

TEST_F(SecurityIntegrationTest,
       RevocationAfterStartUpTakesEffectWithoutRestart) {
  Issue("org-refuge-late", "/O=northdale.accord/OU=org/CN=refuge",
        absl::StrCat("URI:spiffe://", partnership_->partnership_id(),
                     "/org/refuge"),
        "clientAuth");
  Issue("gateway-late", "/O=northdale.accord/OU=gateway/CN=gateway",
        absl::StrCat("URI:", GatewayId()), "serverAuth,clientAuth");
  auto list = [&] {
    auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-refuge-late"));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::ListAgreementsRequest req;
    accord::v1::ListAgreementsResponse resp;
    return stub->ListAgreements(&ctx, req, &resp);
  };
  // A second "gateway" calling the police agent's holder API: authorised
  // (so it gets as far as validating the empty request).
  auto disclose = [&] {
    auto stub = accord::v1::Holder::NewStub(partnership_->Channel(
        partnership_->holder_address("police"), Pki("ca.pem"),
        Pki("gateway-late.pem"), Pki("gateway-late.key"), AgentId("police")));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::DiscloseRequest req;
    accord::v1::DiscloseResponse resp;
    return stub->Disclose(&ctx, req, &resp);
  };
  ASSERT_TRUE(list().ok()) << list().error_message();
  ASSERT_EQ(disclose().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  Revoke("org-refuge-late");
  Revoke("gateway-late");
  grpc::Status gw_status, agent_status;
  for (int i = 0; i < 100; ++i) {
    gw_status = list();
    agent_status = disclose();
    if (!gw_status.ok() &&
        agent_status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(gw_status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(gw_status.error_message(), HasSubstr("revoked"));
  EXPECT_EQ(agent_status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(agent_status.error_message(), HasSubstr("revoked"));
  bool audited = false;
  for (const auto& e : AllAudit()) {
    audited |= e.method() == "ListAgreements" &&
               e.decision() == accord::v1::AUDIT_DECISION_DENY &&
               absl::StrContains(e.deny_reason(), "revoked");
  }
  EXPECT_TRUE(audited);
  EXPECT_THAT(partnership_->gateway()->Log(), HasSubstr("CRL reloaded"));
  // Still the same processes.
  EXPECT_TRUE(partnership_->gateway()->Running());
  EXPECT_TRUE(partnership_->agent("police")->Running());
}

TEST_F(SecurityIntegrationTest, GatewayCertificateRotatesWithoutDroppedCalls) {
  const std::string old_cert = Slurp(Pki("gateway.pem"));
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  std::mutex mu;
  std::vector<std::string> failures;
  // Callers keep going through the rotation: one on a long-lived channel,
  // one dialling afresh (a new handshake) for every call.
  auto caller = [&](bool fresh_channel) {
    auto channel = GatewayAs("org-childrens-services");
    while (!stop) {
      if (fresh_channel) channel = GatewayAs("org-childrens-services");
      auto stub = accord::v1::Gateway::NewStub(channel);
      grpc::ClientContext ctx;
      Deadline(&ctx, 5);
      accord::v1::ListAgreementsRequest req;
      accord::v1::ListAgreementsResponse resp;
      auto status = stub->ListAgreements(&ctx, req, &resp);
      ++calls;
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(status.error_message());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  };
  std::thread steady(caller, false), fresh(caller, true);

  // A new key and certificate for the gateway, moved into place.
  Issue("gateway-next", "/O=northdale.accord/OU=gateway/CN=gateway",
        absl::StrCat("URI:", GatewayId(), ",DNS:localhost,IP:127.0.0.1"),
        "serverAuth,clientAuth");
  const std::string next_cert = Slurp(Pki("gateway-next.pem"));
  ASSERT_NE(next_cert, old_cert);
  ASSERT_EQ(
      RunCommand(absl::StrCat("cd ", partnership_->pki(),
                              " && cp -p gateway-next.key gateway.key.new",
                              " && cp -p gateway-next.pem gateway.pem.new",
                              " && mv gateway.key.new gateway.key",
                              " && mv gateway.pem.new gateway.pem"),
                 partnership_->dir() + "/logs/test-pki.log"),
      0);

  // A fresh handshake soon sees the new certificate.
  std::string served;
  for (int i = 0; i < 100 && served != next_cert; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-police"));
    grpc::ClientContext ctx;
    Deadline(&ctx, 5);
    accord::v1::ListAgreementsRequest req;
    accord::v1::ListAgreementsResponse resp;
    if (!stub->ListAgreements(&ctx, req, &resp).ok()) continue;
    auto auth = ctx.auth_context();
    auto pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!pem.empty()) served.assign(pem[0].data(), pem[0].size());
  }
  EXPECT_EQ(served, next_cert) << "the gateway never served the new cert";
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  steady.join();
  fresh.join();
  EXPECT_GT(calls.load(), 10);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  // The gateway, as a client of the agents, uses the new pair too.
  ExpectPoliceServed("after-rotation");
}

TEST_F(SecurityIntegrationTest, PrivateKeyReadableByOthersIsRefusedAtStartUp) {
  const std::string dir = partnership_->dir();
  ASSERT_EQ(
      RunCommand(
          absl::StrCat("cp ", Pki("gateway.key"), " ", Pki("loose-gateway.key"),
                       " && chmod 644 ", Pki("loose-gateway.key"), " && cp ",
                       Pki("agent-police.key"), " ", Pki("loose-agent.key"),
                       " && chmod 640 ", Pki("loose-agent.key")),
          dir + "/logs/test-pki.log"),
      0);
  std::ofstream(dir + "/gateway-loose.textproto")
      << absl::StrReplaceAll(Slurp(dir + "/gateway.textproto"),
                             {{"pki/gateway.key", "pki/loose-gateway.key"}});
  std::ofstream(dir + "/agent-loose.textproto")
      << absl::StrReplaceAll(Slurp(dir + "/agent-police.textproto"),
                             {{"pki/agent-police.key", "pki/loose-agent.key"}});
  Process gateway("loose-gateway",
                  {BinDir() + "/accord-gateway", "--config",
                   dir + "/gateway-loose.textproto"},
                  dir + "/logs/loose-gateway.log");
  Process agent(
      "loose-agent",
      {BinDir() + "/accord-agent", "--config", dir + "/agent-loose.textproto"},
      dir + "/logs/loose-agent.log");
  ASSERT_TRUE(gateway.Start().ok());
  ASSERT_TRUE(agent.Start().ok());
  for (int i = 0; i < 200 && (gateway.Running() || agent.Running()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(gateway.Running());
  EXPECT_FALSE(agent.Running());
  EXPECT_THAT(gateway.Log(),
              HasSubstr("loose-gateway.key: secret file is accessible by "
                        "group or others (mode 0644); run: chmod 600"));
  EXPECT_THAT(agent.Log(), HasSubstr("loose-agent.key: secret file is "
                                     "accessible by group or others (mode "
                                     "0640)"));
}

// --- Hostile clients -------------------------------------------------------

TEST_F(SecurityIntegrationTest, GarbageBytesAreRefusedAndOthersStillServed) {
  grpc::GenericStub stub(GatewayAs("org-womens-centre"));
  for (const std::string& bytes :
       {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8),
        std::string("\x12\xff\xff\xff\x0f", 5),  // length beyond the end
        std::string(1000, '\x0a')}) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/accord.v1.Gateway/Query", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "the request is not a valid accord.v1.QueryRequest message");
  }
  ExpectPoliceServed("after-garbage");
  // Each was audited, attributed to the certificate that sent it.
  int audited = 0;
  for (const auto& e : AllAudit()) {
    if (e.method() == "Query" && e.caller_org() == "womens-centre" &&
        absl::StrContains(e.deny_reason(),
                          "not a valid accord.v1.QueryRequest message")) {
      ++audited;
    }
  }
  EXPECT_GE(audited, 3);
}

TEST_F(SecurityIntegrationTest,
       InvalidRequestIsRefusedNamingTheFieldAndAudited) {
  auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-womens-centre"));
  struct Case {
    std::function<void(accord::v1::QueryRequest*)> spoil;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](auto* q) { q->mutable_subjects(0)->set_value("not-a-token"); },
       "subjects[0].value"},
      {[](auto* q) { q->set_purpose("safeguarding\xff"); }, "purpose"},
      {[](auto* q) { q->set_mode(static_cast<accord::v1::QueryMode>(42)); },
       "mode"},
      {[](auto* q) {
         for (int i = 0; i < 20; ++i) *q->add_subjects() = q->subjects(0);
       },
       "subjects has 2"},
      {[](auto* q) { q->add_fields(std::string(5000, 'f')); }, "fields[0]"},
      {[](auto* q) { q->clear_subjects(); }, "subjects is required"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field);
    const std::string id = absl::StrCat("invalid-", n++);
    auto q = ZoeQuery(id);
    c.spoil(&q);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::QueryResponse resp;
    // Protobuf refuses to serialise invalid UTF-8 in a string field; send it
    // as raw bytes the way a hostile client would.
    grpc::Status status;
    if (c.field == "purpose") {
      grpc::GenericStub raw(GatewayAs("org-womens-centre"));
      std::string bytes;
      q.SerializePartialToString(&bytes);
      grpc::Slice slice(bytes);
      grpc::ByteBuffer request(&slice, 1), response;
      absl::Notification done;
      raw.UnaryCall(&ctx, "/accord.v1.Gateway/Query", grpc::StubOptions(),
                    &request, &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
      done.WaitForNotification();
      // Proto3 parsing already rejects invalid UTF-8 before a handler runs;
      // the refusal is still audited.
      EXPECT_FALSE(status.ok());
      continue;
    }
    status = stub->Query(&ctx, q, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("field "));
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
    auto denial = AuditedDenial(id);
    ASSERT_NE(denial, nullptr);
    EXPECT_THAT(denial->deny_reason(), HasSubstr(c.field));
  }
  ExpectPoliceServed("after-invalid");
}

TEST_F(SecurityIntegrationTest, OversizedMessageIsRefused) {
  // A client that ignores the limits: no send limit of its own.
  accord::v1::TlsFiles tls;
  tls.set_ca_file(Pki("ca.pem"));
  tls.set_cert_file(Pki("org-womens-centre.pem"));
  tls.set_key_file(Pki("org-womens-centre.key"));
  auto creds = MakeChannelCredentials(tls, GatewayId());
  ASSERT_TRUE(creds.ok());
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  auto stub = accord::v1::Gateway::NewStub(
      grpc::CreateCustomChannel(partnership_->gateway_address(), *creds, args));
  auto q = ZoeQuery("oversized");
  q.mutable_no_consent()->set_justification(std::string(6 << 20, 'j'));
  grpc::ClientContext ctx;
  Deadline(&ctx, 30);
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  ExpectPoliceServed("after-oversized");
}

TEST_F(SecurityIntegrationTest, WrongContentTypeIsRefused) {
  const std::string out = partnership_->dir() + "/logs/curl.out";
  const int rc = RunCommand(
      absl::StrCat(
          "curl -sS --http2 --max-time 10 --cacert ", Pki("ca.pem"), " --cert ",
          Pki("org-womens-centre.pem"), " --key ", Pki("org-womens-centre.key"),
          " -H 'te: trailers' -H 'content-type: application/json' -d '{}' ",
          "-D - -o /dev/null https://localhost:",
          partnership_->gateway_address().substr(
              partnership_->gateway_address().rfind(':') + 1),
          "/accord.v1.Gateway/Query"),
      out);
  EXPECT_EQ(rc, 0) << Slurp(out);
  // gRPC 1.51 does not refuse the content type itself, but the body is no
  // gRPC message: refused before any handler runs, with a gRPC error status
  // naming what was expected, and no response message.
  EXPECT_THAT(Slurp(out), HasSubstr("grpc-status: 3"));  // INVALID_ARGUMENT
  EXPECT_THAT(Slurp(out), HasSubstr("grpc-message: the request is not a valid "
                                    "accord.v1.QueryRequest message"));
  ExpectPoliceServed("after-content-type");
}

TEST_F(SecurityIntegrationTest, OneOrganisationsFloodDoesNotStarveOthers) {
  // law-centre floods the gateway with calls it never waits for in turn.
  auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-law-centre"));
  constexpr int kFlood = 300;
  struct Call {
    grpc::ClientContext ctx;
    accord::v1::QueryRequest request;
    accord::v1::QueryResponse response;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mu;
  std::map<grpc::StatusCode, int> codes;
  std::atomic<int> left{kFlood};
  absl::Notification flood_done;
  for (int i = 0; i < kFlood; ++i) {
    auto call = std::make_unique<Call>();
    Deadline(&call->ctx, 30);
    call->request = ZoeQuery(absl::StrCat("flood-", i));
    stub->async()->Query(&call->ctx, &call->request, &call->response,
                         [&](grpc::Status s) {
                           {
                             std::lock_guard<std::mutex> lock(mu);
                             ++codes[s.error_code()];
                           }
                           if (--left == 0) flood_done.Notify();
                         });
    calls.push_back(std::move(call));
  }
  // Meanwhile the police are served every time.
  for (int i = 0; i < 10; ++i) {
    ExpectPoliceServed(absl::StrCat("during-flood-", i));
  }
  ASSERT_TRUE(flood_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  std::string seen;
  for (const auto& [code, n] : codes) absl::StrAppend(&seen, " ", code, ":", n);
  EXPECT_GT(codes[grpc::StatusCode::RESOURCE_EXHAUSTED], 0)
      << "status codes (count):" << seen;
  EXPECT_LE(codes[grpc::StatusCode::RESOURCE_EXHAUSTED], kFlood - 1) << seen;

  // Every refusal is accounted for in the audit log, attributed to
  // law-centre: the first ones each in an entry of its own, the rest of the
  // flood counted in summary entries (written within a second).
  const int refused = codes[grpc::StatusCode::RESOURCE_EXHAUSTED];
  uint64_t audited = 0, summarised = 0;
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  do {
    audited = summarised = 0;
    for (const auto& e : AllAudit()) {
      if (e.decision() != accord::v1::AUDIT_DECISION_DENY ||
          !(absl::StrContains(e.deny_reason(), "rate limit") ||
            absl::StrContains(e.deny_reason(), "in flight")))
        continue;
      if (absl::StartsWith(e.request_id(), "flood-")) {
        EXPECT_EQ(e.caller_org(), "law-centre");
        ++audited;
      } else if (e.refusals_summarised() > 0 && e.method() == "Query" &&
                 e.caller_org() == "law-centre") {
        summarised += e.refusals_summarised();
      }
    }
    if (audited + summarised >= static_cast<uint64_t>(refused)) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < give_up);
  EXPECT_GT(audited, 0u);
  EXPECT_EQ(audited + summarised, static_cast<uint64_t>(refused));
}

// --- Deadlines -------------------------------------------------------------

TEST_F(SecurityIntegrationTest, CallersDeadlineBoundsTheWaitForASilentHolder) {
  // The rape-crisis agent stops answering: its connection stays open but no
  // reply comes. The gateway's own holder deadline is 30 s; the caller gives
  // the whole query 4 s, and must get an answer, with that holder's status,
  // before its own deadline rather than a DEADLINE_EXCEEDED.
  Process* holder = partnership_->agent("rape-crisis");
  holder->Signal(SIGSTOP);
  auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-police"));
  grpc::ClientContext ctx;
  Deadline(&ctx, 4);
  accord::v1::QueryResponse resp;
  const grpc::Status status =
      stub->Query(&ctx, ZoeQuery("deadline-silent-holder"), &resp);
  holder->Signal(SIGCONT);
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  ASSERT_EQ(resp.answers_size(), 1);
  EXPECT_EQ(resp.answers(0).holder(), "rape-crisis");
  EXPECT_EQ(resp.answers(0).status(), accord::v1::HOLDER_STATUS_TIMED_OUT);
  EXPECT_EQ(resp.answers(0).records_size(), 0);
}

// --- Logs ------------------------------------------------------------------

TEST_F(SecurityIntegrationTest, NoRecordValueOrSecretAppearsInAnyLog) {
  // A record with a value found nowhere else, released to the police.
  const std::string marker = "Quokka-Marmalade-7731";
  {
    auto stub = accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel("rape-crisis", "org-rape-crisis"));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::UpsertRecordRequest req;
    auto* r = req.mutable_record();
    r->set_local_id("RC-2041-R9");
    r->set_subject_local_id("RC-2041");
    r->set_category(accord::v1::DATA_CATEGORY_RISK);
    r->set_provenance(accord::v1::PROVENANCE_OPINION);
    r->set_service("isva");
    r->set_author_role("ISVA");
    r->mutable_recorded_at()->set_seconds(1772409600);
    r->set_text("Risk note " + marker);
    accord::v1::UpsertRecordResponse resp;
    auto status = stub->UpsertRecord(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  accord::v1::QueryResponse resp;
  auto status = QueryAs("org-police", "log-check", &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(resp.DebugString(), HasSubstr(marker));  // it really left

  // And a refused request carrying record-like content and identifiers.
  auto q = ZoeQuery("log-check-refused");
  q.mutable_no_consent()->set_justification("Justification " + marker);
  q.mutable_subjects(0)->set_value("Zoe Ashworth-Hale " + marker);
  auto stub = accord::v1::Gateway::NewStub(GatewayAs("org-police"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  EXPECT_FALSE(stub->Query(&ctx, q, &resp).ok());

  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string linkage_key =
      Slurp(partnership_->dir() + "/keys/linkage.key");
  const std::string pseudonym_key =
      Slurp(partnership_->dir() + "/keys/pseudonym-rape-crisis.key");
  const std::string tls_key = Slurp(Pki("gateway.key"));
  const std::string given_name = "Ashworth-Hale";
  std::vector<std::string> logs = {partnership_->gateway()->Log()};
  for (const char* org :
       {"womens-centre", "rape-crisis", "refuge", "law-centre", "employment",
        "police", "childrens-services"}) {
    logs.push_back(partnership_->agent(org)->Log());
  }
  for (const auto& log : logs) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr(marker)));
    EXPECT_THAT(log, ::testing::Not(HasSubstr(given_name)));
    EXPECT_THAT(log, ::testing::Not(HasSubstr(linkage_key.substr(0, 32))));
    EXPECT_THAT(log, ::testing::Not(HasSubstr(pseudonym_key.substr(0, 32))));
    EXPECT_THAT(log, ::testing::Not(HasSubstr("PRIVATE KEY")));
    EXPECT_THAT(log, ::testing::Not(HasSubstr(tls_key.substr(40, 40))));
  }
}

// --- Agreements -------------------------------------------------------------

TEST_F(SecurityIntegrationTest, EndedAgreementTakesEffectWithoutRestart) {
  const std::string file =
      partnership_->dir() + "/agreements/police-dasv.textproto";
  const std::string original = Slurp(file);
  ExpectPoliceServed("before-agreement-ends");
  // The partnership ends the agreement: a new version valid for one second
  // at the start of 2026. Written beside the file and renamed over it.
  std::string ended =
      absl::StrReplaceAll(original, {{"version: 2", "version: 3"},
                                     {"valid_until { seconds: 1861920000 }",
                                      "valid_until { seconds: 1767225601 }"}});
  ASSERT_NE(ended, original);
  auto replace = [&](const std::string& text) {
    std::ofstream(file + ".new") << text;
    ASSERT_EQ(std::rename((file + ".new").c_str(), file.c_str()), 0);
  };
  replace(ended);
  grpc::Status status;
  for (int i = 0; i < 100; ++i) {
    status = QueryAs("org-police", absl::StrCat("agreement-ended-", i));
    if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << status.error_message() << "\n"
      << partnership_->gateway()->Log();
  // Restored, it applies again, still without a restart.
  replace(absl::StrReplaceAll(original, {{"version: 2", "version: 4"}}));
  for (int i = 0; i < 100; ++i) {
    status = QueryAs("org-police", absl::StrCat("agreement-restored-", i));
    if (status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(partnership_->gateway()->Running());
}

}  // namespace
}  // namespace accord::testing
