// The walking skeleton end to end: a real gateway and seven real agents on
// loopback with certificates from deploy/pki. An allowed query returns the
// record; callers without a usable identity are refused; the agent refuses
// anyone but the gateway; every decision is in the audit log; and a holder
// whose certificate is revoked (at start or while connected) is sent nothing
// and reported unavailable in words that do not say where it is.

#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/identity.h"
#include "tests/checked.h"
#include "tests/fake_server.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;

class QueryIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    ASSERT_TRUE(partnership_->StartAll().ok());
    for (const char* org :
         {"rape-crisis", "womens-centre", "refuge", "employment"}) {
      auto s = partnership_->LoadExampleData(org);
      ASSERT_TRUE(s.ok()) << s;
    }
    auto tokens = partnership_->TokensOf("rape-crisis", "RC-2041");
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    zoe_ = new std::vector<accord::v1::SubjectToken>(*tokens);
  }
  static void TearDownTestSuite() {
    delete partnership_;
    delete zoe_;
  }

  static void Deadline(grpc::ClientContext* ctx) { PrepareCall(ctx, 10); }

  accord::v1::QueryRequest ZoeQuery(const std::string& purpose) {
    accord::v1::QueryRequest q;
    q.set_purpose(purpose);
    q.set_mode(accord::v1::QUERY_MODE_RECORDS);
    for (const auto& t : *zoe_) *q.add_subjects() = t;
    return q;
  }

  // Audit entries of one caller organisation, read through the auditor API.
  std::vector<accord::v1::AuditEntry> AuditEntries(
      const std::string& caller_org) {
    accord::v1::AuditSearchRequest req;
    req.set_caller_org(caller_org);
    return CheckedAudit(partnership_->SearchAudit(req));
  }

  std::vector<accord::v1::AuditEntry> AllAudit() {
    return CheckedAudit(partnership_->SearchAudit());
  }

  static TestPartnership* partnership_;
  static std::vector<accord::v1::SubjectToken>* zoe_;
};

TestPartnership* QueryIntegrationTest::partnership_ = nullptr;
std::vector<accord::v1::SubjectToken>* QueryIntegrationTest::zoe_ = nullptr;

TEST_F(QueryIntegrationTest, PoliceQueryWithConsentReturnsMinimisedRiskRecord) {
  auto stub =
      accord::v1::Gateway::NewStub(partnership_->GatewayChannel("org-police"));
  grpc::ClientContext ctx;
  PrepareCall(&ctx, 10, "pc-4471", "public-protection-officer");
  accord::v1::QueryRequest q = ZoeQuery("safeguarding");
  q.add_holders("rape-crisis");
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(resp.answers_size(), 1);
  const auto& a = resp.answers(0);
  EXPECT_EQ(a.holder(), "rape-crisis");
  ASSERT_EQ(a.status(), accord::v1::HOLDER_STATUS_ANSWERED) << a.detail();
  bool risk = false;
  for (const auto& r : a.records()) {
    if (r.category() == accord::v1::DATA_CATEGORY_RISK) {
      risk = true;
      EXPECT_EQ(r.provenance(), accord::v1::PROVENANCE_OPINION);
      EXPECT_THAT(r.text(), HasSubstr("high risk"));
    }
    // Consent covers identity, contact, risk and engagement only.
    EXPECT_NE(r.category(), accord::v1::DATA_CATEGORY_CASE_SUMMARY);
  }
  EXPECT_TRUE(risk);
  // Ethnicity is special category data no police rule releases.
  EXPECT_EQ(a.fields().count("ethnicity"), 0u);

  // The decision is in the audit log with who, why, under what, and what left.
  const auto entries = AuditEntries("police");
  bool found = false;
  for (const auto& e : entries) {
    if (e.request_id() != resp.request_id()) continue;
    found = true;
    EXPECT_EQ(e.seq(), resp.audit_seq());
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
    EXPECT_EQ(e.holder(), "rape-crisis");
    EXPECT_EQ(e.actor().user_id(), "pc-4471");
    EXPECT_FALSE(e.agreement_id().empty());
    EXPECT_GT(e.record_count(), 0u);
    EXPECT_EQ(e.subjects_size(), q.subjects_size());
  }
  EXPECT_TRUE(found);
}

TEST_F(QueryIntegrationTest, CallerFromAnotherCaIsRefusedAtTheHandshake) {
  const std::string dir = partnership_->pki();
  auto channel = partnership_->Channel(
      partnership_->gateway_address(), dir + "/ca.pem",
      dir + "/rogue-org-police.pem", dir + "/rogue-org-police.key",
      SpiffeId(partnership_->partnership_id(), PrincipalKind::kGateway));
  auto stub = accord::v1::Gateway::NewStub(channel);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, ZoeQuery("safeguarding"), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_EQ(resp.answers_size(), 0);
}

TEST_F(QueryIntegrationTest, CallerWithoutCertificateIsRefused) {
  auto stub = accord::v1::Gateway::NewStub(
      partnership_->ChannelWithoutClientCert(partnership_->gateway_address()));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, ZoeQuery("safeguarding"), &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(QueryIntegrationTest, UnknownOrganisationIsRefusedAndAudited) {
  const std::string dir = partnership_->pki();
  auto stub = accord::v1::Gateway::NewStub(partnership_->Channel(
      partnership_->gateway_address(), dir + "/ca.pem",
      dir + "/unknown-org.pem", dir + "/unknown-org.key",
      SpiffeId(partnership_->partnership_id(), PrincipalKind::kGateway)));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::QueryRequest q = ZoeQuery("safeguarding");
  q.set_request_id("unknown-org-attempt");
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("not a member of this partnership"));
  bool audited = false;
  for (const auto& e : AllAudit()) {
    if (e.request_id() == "unknown-org-attempt") {
      audited = true;
      EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
      EXPECT_THAT(e.caller(), HasSubstr("/org/unknown-org"));
      EXPECT_TRUE(e.caller_org().empty());
    }
  }
  EXPECT_TRUE(audited);
}

TEST_F(QueryIntegrationTest, OtherTrustDomainIsRefusedAndAudited) {
  const std::string dir = partnership_->pki();
  auto stub = accord::v1::Gateway::NewStub(partnership_->Channel(
      partnership_->gateway_address(), dir + "/ca.pem",
      dir + "/other-domain-org-police.pem",
      dir + "/other-domain-org-police.key",
      SpiffeId(partnership_->partnership_id(), PrincipalKind::kGateway)));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::QueryRequest q = ZoeQuery("safeguarding");
  q.set_request_id("other-domain-attempt");
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  bool audited = false;
  for (const auto& e : AllAudit())
    audited |= e.request_id() == "other-domain-attempt";
  EXPECT_TRUE(audited);
}

TEST_F(QueryIntegrationTest, AgentRefusesCallersOtherThanTheGateway) {
  // The police system presents a valid partnership certificate, but only the
  // gateway may call an agent's holder API.
  auto stub = accord::v1::Holder::NewStub(
      partnership_->AgentHolderChannel("rape-crisis", "org-police"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::DiscloseRequest req;
  req.set_request_id("direct");
  req.set_requester_org("police");
  req.set_purpose("safeguarding");
  for (const auto& t : *zoe_) *req.add_subjects() = t;
  req.set_mode(accord::v1::QUERY_MODE_RECORDS);
  req.mutable_decision()->set_verdict(accord::v1::VERDICT_ALLOW);
  accord::v1::DiscloseResponse resp;
  auto status = stub->Disclose(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("only the gateway"));
  EXPECT_EQ(resp.records_size(), 0);

  // Nor may another partner's agent.
  auto stub2 = accord::v1::Holder::NewStub(
      partnership_->AgentHolderChannel("rape-crisis", "agent-refuge"));
  grpc::ClientContext ctx2;
  Deadline(&ctx2);
  status = stub2->Disclose(&ctx2, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(QueryIntegrationTest, LocalApiRefusesOtherOrganisations) {
  auto stub = accord::v1::AgentLocal::NewStub(
      partnership_->AgentLocalChannel("rape-crisis", "org-police"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::SubjectTokensRequest req;
  req.set_subject_local_id("RC-2041");
  accord::v1::SubjectTokensResponse resp;
  auto status = stub->SubjectTokens(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(resp.tokens_size(), 0);
}

TEST_F(QueryIntegrationTest, QueryWithoutAgreementIsDeniedAndAudited) {
  // The employment charity has no agreement to query the police.
  auto stub = accord::v1::Gateway::NewStub(
      partnership_->GatewayChannel("org-employment"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::QueryRequest q = ZoeQuery("crime-prevention");
  q.add_holders("police");
  q.set_request_id("employment-asks-police");
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << status.error_message();
  bool audited = false;
  for (const auto& e : AuditEntries("employment")) {
    if (e.request_id() == "employment-asks-police") {
      audited = true;
      EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
      EXPECT_FALSE(e.deny_reason().empty());
    }
  }
  EXPECT_TRUE(audited);
}

TEST_F(QueryIntegrationTest, NonAuditorCannotReadTheAuditLog) {
  auto stub =
      accord::v1::Auditor::NewStub(partnership_->GatewayChannel("org-police"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::AuditSearchRequest req;
  accord::v1::AuditSearchResponse resp;
  auto status = stub->Search(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(resp.entries_size(), 0);
}

TEST_F(QueryIntegrationTest, EveryCallFromAnOrganisationNamesThePractitioner) {
  // No practitioner, or a misspelt key: the police get nothing, and the
  // attempt is audited.
  auto stub =
      accord::v1::Gateway::NewStub(partnership_->GatewayChannel("org-police"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("x-accord-user-id", "pc-4471");
  ctx.AddMetadata("x-accord-role", "public-protection-officer");
  accord::v1::QueryRequest q = ZoeQuery("safeguarding");
  q.set_request_id("no-practitioner");
  accord::v1::QueryResponse resp;
  auto status = stub->Query(&ctx, q, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("'x-accord-user'"));
  EXPECT_THAT(status.error_message(), HasSubstr("'x-accord-role'"));
  EXPECT_EQ(resp.answers_size(), 0);
  bool audited = false;
  for (const auto& e : AllAudit()) {
    if (e.request_id() != "no-practitioner") continue;
    audited = true;
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
    EXPECT_EQ(e.caller_org(), "police");
  }
  EXPECT_TRUE(audited);

  // The agent's local API asks the same of the partner's own system.
  auto local = accord::v1::AgentLocal::NewStub(
      partnership_->AgentLocalChannel("rape-crisis", "org-rape-crisis"));
  grpc::ClientContext lctx;
  lctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  accord::v1::SubjectTokensRequest tokens;
  tokens.set_subject_local_id("RC-2041");
  accord::v1::SubjectTokensResponse tresp;
  auto lstatus = local->SubjectTokens(&lctx, tokens, &tresp);
  EXPECT_EQ(lstatus.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(lstatus.error_message(), HasSubstr("'x-accord-user'"));
}

TEST_F(QueryIntegrationTest, AccordctlQueryPrintsTheAnswer) {
  std::string output;
  std::string token_flags;
  for (const auto& t : *zoe_) {
    if (t.kind() == accord::v1::TOKEN_KIND_NAME_DOB)
      token_flags += " --token name-dob:" + t.value();
  }
  const int rc = partnership_->Accordctl(
      "query --as org-police --purpose safeguarding --involvement --user "
      "pc-4471 --role public-protection-officer" +
          token_flags,
      &output);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_THAT(output, HasSubstr("Northdale Rape Crisis"));
  EXPECT_THAT(output, HasSubstr("contact: Carys Lindqvist"));
}

// --- The holders the gateway dials ------------------------------------------

// A police query to the refuge alone, as the police system asks it.
accord::v1::QueryResponse PoliceAsksTheRefuge(
    TestPartnership* partnership, const std::vector<accord::v1::SubjectToken>& zoe,
    const std::string& request_id) {
  auto stub =
      accord::v1::Gateway::NewStub(partnership->GatewayChannel("org-police"));
  grpc::ClientContext ctx;
  PrepareCall(&ctx, 15, "pc-4471", "public-protection-officer");
  accord::v1::QueryRequest q;
  q.set_request_id(request_id);
  q.set_purpose("safeguarding");
  q.set_mode(accord::v1::QUERY_MODE_RECORDS);
  q.add_holders("refuge");
  for (const auto& t : zoe) *q.add_subjects() = t;
  accord::v1::QueryResponse resp;
  const grpc::Status status = stub->Query(&ctx, q, &resp);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return resp;
}

TEST_F(QueryIntegrationTest, RevokedHolderReceivesNoDiscloseAndIsUnavailable) {
  // A fake refuge agent at the refuge's address, holding a refuge agent
  // certificate the CA has revoked.
  const std::string refuge = SpiffeId(partnership_->partnership_id(),
                                      PrincipalKind::kAgent, "refuge");
  ASSERT_TRUE(
      partnership_->IssueCertificate("revoked-agent-refuge", refuge).ok());
  ASSERT_TRUE(partnership_->RevokeCertificate("revoked-agent-refuge").ok());
  partnership_->agent("refuge")->Stop();
  auto fake =
      CountingServer::Start(partnership_->holder_address("refuge"),
                            partnership_->CertificateFiles("revoked-agent-refuge"));
  ASSERT_TRUE(fake.ok()) << fake.status();

  for (int i = 0; i < 3; ++i) {
    const auto resp =
        PoliceAsksTheRefuge(partnership_, *zoe_, absl::StrCat("revoked-refuge-", i));
    ASSERT_EQ(resp.answers_size(), 1);
    const auto& a = resp.answers(0);
    EXPECT_EQ(a.status(), accord::v1::HOLDER_STATUS_UNAVAILABLE);
    EXPECT_THAT(a.detail(),
                HasSubstr("the holder's agent presented a revoked certificate"));
    // Nothing of where the holder is, or of gRPC's transport.
    EXPECT_THAT(a.detail(), ::testing::Not(HasSubstr("127.0.0.1")));
    EXPECT_THAT(a.detail(), ::testing::Not(HasSubstr(absl::StrCat(
                                (*fake)->port()))));
    EXPECT_THAT(a.detail(), ::testing::Not(HasSubstr("ipv4")));
    EXPECT_EQ(a.records_size(), 0);
  }
  EXPECT_EQ((*fake)->calls(), 0) << ::testing::PrintToString((*fake)->methods());
  // The raw detail is in the gateway's process log; the refusal is audited.
  EXPECT_THAT(partnership_->gateway()->Log(),
              HasSubstr("holder refuge: refused the holder's agent"));
  bool audited = false;
  for (const auto& e : AllAudit()) {
    if (e.request_id() == "revoked-refuge-0" && e.holder() == "refuge") {
      audited = true;
      EXPECT_THAT(e.detail(), HasSubstr("presented a revoked certificate"));
    }
  }
  EXPECT_TRUE(audited);

  // The real agent back at its address is asked again.
  (*fake)->Stop();
  ASSERT_TRUE(partnership_->StartAgent("refuge").ok());
  accord::v1::HolderStatus status = accord::v1::HOLDER_STATUS_UNAVAILABLE;
  for (int i = 0; i < 100 && status != accord::v1::HOLDER_STATUS_ANSWERED &&
                  status != accord::v1::HOLDER_STATUS_NO_MATCH &&
                  status != accord::v1::HOLDER_STATUS_REFUSED;
       ++i) {
    const auto resp =
        PoliceAsksTheRefuge(partnership_, *zoe_, absl::StrCat("refuge-back-", i));
    ASSERT_EQ(resp.answers_size(), 1);
    status = resp.answers(0).status();
    if (status == accord::v1::HOLDER_STATUS_UNAVAILABLE)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(status, accord::v1::HOLDER_STATUS_UNAVAILABLE);
}

TEST_F(QueryIntegrationTest, CrlReloadStopsTheOpenChannelToARevokedHolder) {
  // The refuge agent's own certificate is revoked while the gateway has a
  // connection to it open.
  auto before = PoliceAsksTheRefuge(partnership_, *zoe_, "refuge-open-1");
  ASSERT_EQ(before.answers_size(), 1);
  ASSERT_NE(before.answers(0).status(), accord::v1::HOLDER_STATUS_UNAVAILABLE)
      << before.answers(0).detail();
  ASSERT_TRUE(partnership_->RevokeCertificate("agent-refuge").ok());
  const auto after = PoliceAsksTheRefuge(partnership_, *zoe_, "refuge-open-2");
  ASSERT_EQ(after.answers_size(), 1);
  EXPECT_EQ(after.answers(0).status(), accord::v1::HOLDER_STATUS_UNAVAILABLE);
  EXPECT_THAT(after.answers(0).detail(), HasSubstr("revoked"));
  EXPECT_THAT(partnership_->gateway()->Log(),
              HasSubstr("accepted with is now refused"));

  // A new certificate for the refuge's agent (same key, new serial), and it
  // is served again.
  ASSERT_EQ(std::remove((partnership_->pki() + "/agent-refuge.pem").c_str()), 0);
  ASSERT_TRUE(partnership_->IssueCertificate(
                  "agent-refuge", SpiffeId(partnership_->partnership_id(),
                                           PrincipalKind::kAgent, "refuge"))
                  .ok());
  partnership_->agent("refuge")->Stop();
  ASSERT_TRUE(partnership_->StartAgent("refuge").ok());
  accord::v1::HolderStatus status = accord::v1::HOLDER_STATUS_UNAVAILABLE;
  for (int i = 0; i < 100 && status == accord::v1::HOLDER_STATUS_UNAVAILABLE;
       ++i) {
    const auto resp = PoliceAsksTheRefuge(partnership_, *zoe_,
                                          absl::StrCat("refuge-renewed-", i));
    ASSERT_EQ(resp.answers_size(), 1);
    status = resp.answers(0).status();
    if (status == accord::v1::HOLDER_STATUS_UNAVAILABLE)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_NE(status, accord::v1::HOLDER_STATUS_UNAVAILABLE);
}

}  // namespace
}  // namespace accord::testing
