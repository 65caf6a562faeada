// Every agent keeps its own tamper-evident audit log: a real gateway and a
// real Rape Crisis agent on loopback. A referral the agent refuses to send
// and a consent withdrawal are in that agent's log; its export verifies
// offline with the agent's own public key (and not with the gateway's);
// only the organisation itself and the partnership's auditors may read it,
// and every read is itself recorded; a police query's disclosure is in both
// logs and reconciles; an answer the gateway never recorded is named.

#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "tests/checked.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using accord::v1::AuditEntry;
using ::testing::HasSubstr;

constexpr char kOrg[] = "rape-crisis";

class AgentAuditIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    ASSERT_TRUE(partnership_->StartGateway().ok());
    auto s = partnership_->StartAgent(kOrg);
    ASSERT_TRUE(s.ok()) << s;
    s = partnership_->LoadExampleData(kOrg);
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() { delete partnership_; }

  static void Deadline(grpc::ClientContext* ctx) { PrepareCall(ctx, 15); }

  std::unique_ptr<accord::v1::AgentLocal::Stub> Local() {
    return accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(kOrg, absl::StrCat("org-", kOrg)));
  }

  std::vector<AuditEntry> AgentLog(const std::string& reader = "") {
    return CheckedAudit(partnership_->SearchAgentAudit(kOrg, {}, reader));
  }

  // accordctl's exit status; its output in *out.
  int Ctl(const std::string& args, std::string* out) {
    return partnership_->Accordctl(args, out);
  }
  std::string AgentFlags(const std::string& as = "org-rape-crisis") {
    return absl::StrCat("--agent ", partnership_->local_address(kOrg), " --as ",
                        as);
  }

  // A police query to this agent, through the gateway.
  accord::v1::QueryResponse PoliceQuery() {
    auto resp =
        partnership_->QueryAbout("org-police", kOrg, "RC-2041", "safeguarding",
                                 "pc-4471", "public-protection-officer");
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : accord::v1::QueryResponse();
  }

  static TestPartnership* partnership_;
};

TestPartnership* AgentAuditIntegrationTest::partnership_ = nullptr;

TEST_F(AgentAuditIntegrationTest,
       RefusedReferralAndConsentWithdrawalAreInTheAgentsVerifiableLog) {
  // A referral to a partner no agreement allows: the agent refuses it
  // before anything leaves, and records that it did.
  {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, 15, "isva-carys", "isva");
    accord::v1::LocalSendReferralRequest req;
    req.set_subject_local_id("RC-2041");
    req.set_to_org("police");
    req.set_purpose("referral");
    req.set_urgency(accord::v1::URGENCY_ROUTINE);
    (*req.mutable_content()->mutable_contact_details())["phone"] = "07700";
    req.mutable_content()->set_case_summary("her story");
    accord::v1::SendReferralResponse resp;
    auto status = Local()->SendReferral(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << status.error_message();
  }
  // A consent recorded, then withdrawn.
  const std::string consent_id = "RC-2041-IT1";
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::RecordConsentRequest req;
    auto* c = req.mutable_consent();
    c->set_id(consent_id);
    c->set_subject_local_id("RC-2041");
    c->add_granted_to_orgs("employment");
    c->add_purposes("referral");
    c->add_categories(accord::v1::DATA_CATEGORY_CONTACT);
    *c->mutable_given_at() = ToProtoTime(absl::Now() - absl::Hours(1));
    c->set_method(accord::v1::CONSENT_METHOD_VERBAL);
    c->set_recorded_by("ISVA C. Lindqvist");
    accord::v1::RecordConsentResponse resp;
    ASSERT_TRUE(Local()->RecordConsent(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, 15, "isva-carys", "isva");
    accord::v1::WithdrawConsentRequest req;
    req.set_consent_id(consent_id);
    req.set_recorded_by("ISVA C. Lindqvist");
    accord::v1::WithdrawConsentResponse resp;
    ASSERT_TRUE(Local()->WithdrawConsent(&ctx, req, &resp).ok());
  }

  const auto zoe = partnership_->TokensOf(kOrg, "RC-2041");
  ASSERT_TRUE(zoe.ok());
  bool refused = false, withdrawn = false, recorded = false;
  for (const AuditEntry& e : AgentLog()) {
    EXPECT_EQ(e.agent_org(), kOrg);
    if (e.method() == "SendReferral" && e.holder() == "police") {
      refused = true;
      EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
      EXPECT_FALSE(e.deny_reason().empty());
      EXPECT_EQ(e.actor().user_id(), "isva-carys");
      EXPECT_EQ(e.caller_org(), kOrg);
      EXPECT_EQ(e.detail(), "asked to send: phone, case_summary");
      ASSERT_GT(e.subjects_size(), 0);
      EXPECT_EQ(e.subjects(0).value(), (*zoe)[0].value());
    }
    if (e.consent_id() == consent_id && e.method() == "RecordConsent")
      recorded = true;
    if (e.consent_id() == consent_id && e.method() == "WithdrawConsent") {
      withdrawn = true;
      EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
      EXPECT_EQ(e.actor().user_id(), "isva-carys");
      EXPECT_THAT(e.detail(), HasSubstr("recorded by ISVA C. Lindqvist"));
      EXPECT_GT(e.subjects_size(), 0);
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(recorded);
  EXPECT_TRUE(withdrawn);
  // The refused referral never reached the gateway.
  for (const AuditEntry& e : CheckedAudit(partnership_->SearchAudit())) {
    EXPECT_FALSE(e.method() == "SendReferral" && e.holder() == "police")
        << e.DebugString();
  }

  // The organisation's data protection officer exports the agent's log and
  // checks it offline with the agent's own public key.
  const std::string file = partnership_->dir() + "/agent-export.jsonl";
  std::string out;
  ASSERT_EQ(Ctl(absl::StrCat("audit export ", AgentFlags(),
                             " --user dpo-rc --out ", file),
                &out),
            0)
      << out;
  EXPECT_EQ(Ctl(absl::StrCat("audit verify ", file, " --public-key ",
                             partnership_->agent_audit_key(kOrg)),
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("verified entries 0 to"));
  // Not the gateway's key, nor another agent's.
  EXPECT_EQ(Ctl(absl::StrCat("audit verify ", file, " --public-key ",
                             partnership_->gateway_audit_key()),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("tree head signature invalid"));
  EXPECT_EQ(Ctl(absl::StrCat("audit verify ", file, " --public-key ",
                             partnership_->agent_audit_key("refuge")),
                &out),
            1);

  // The same subcommands as for the gateway, pointed at the agent.
  ASSERT_EQ(Ctl(absl::StrCat("audit tree-head ", AgentFlags()), &out), 0)
      << out;
  ASSERT_EQ(Ctl(absl::StrCat("audit proof 0 ", AgentFlags(), " --public-key ",
                             partnership_->agent_audit_key(kOrg)),
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("entry 0 is included"));
  ASSERT_EQ(Ctl(absl::StrCat("audit search --all ", AgentFlags()), &out), 0)
      << out;
  EXPECT_THAT(out,
              HasSubstr("deny SendReferral by rape-crisis (isva-carys, isva) "
                        "-> police for referral [recorded by "
                        "rape-crisis's agent]"));

  // Reading the log is itself in the log, with the reader.
  bool export_read = false;
  for (const AuditEntry& e : AgentLog()) {
    if (e.method() == "AuditExport" && e.actor().user_id() == "dpo-rc") {
      export_read = true;
      EXPECT_EQ(e.caller(), "spiffe://northdale.accord/org/rape-crisis");
      EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
    }
  }
  EXPECT_TRUE(export_read);
}

TEST_F(AgentAuditIntegrationTest,
       OnlyTheOrganisationAndThePartnershipsAuditorsReadTheAgentsLog) {
  std::string out;
  // Another partner's systems, and the agent's own identity: refused.
  EXPECT_EQ(Ctl(absl::StrCat("audit search ",
                             AgentFlags("org-police --agent-org rape-crisis")),
                &out),
            1);
  EXPECT_THAT(out, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(out, HasSubstr("may not read the audit log of rape-crisis's "
                             "agent; only "
                             "spiffe://northdale.accord/org/rape-crisis and "
                             "the partnership's auditors may"));
  auto as_agent = partnership_->SearchAgentAudit(kOrg, {}, "agent-rape-crisis");
  EXPECT_EQ(as_agent.status().code(), absl::StatusCode::kPermissionDenied);
  // An auditor names the agent's organisation; without it accordctl cannot
  // know whom to expect.
  EXPECT_EQ(Ctl(absl::StrCat("audit search ", AgentFlags("auditor-dpo")), &out),
            1);
  EXPECT_THAT(out, HasSubstr("--agent-org ORG"));
  ASSERT_EQ(Ctl(absl::StrCat("audit search --all ",
                             AgentFlags("auditor-dpo --agent-org rape-crisis")),
                &out),
            0)
      << out;
  // The refusals are in the log, read by the partnership's auditor.
  int refusals = 0;
  for (const AuditEntry& e : AgentLog("auditor-dpo")) {
    if (e.method() != "AuditSearch" ||
        e.decision() != accord::v1::AUDIT_DECISION_DENY)
      continue;
    ++refusals;
    EXPECT_TRUE(e.caller() == "spiffe://northdale.accord/org/police" ||
                e.caller() == "spiffe://northdale.accord/agent/rape-crisis")
        << e.caller();
  }
  EXPECT_EQ(refusals, 2);
}

TEST_F(AgentAuditIntegrationTest, DisclosuresReconcileAndAMissingTwinIsNamed) {
  const auto resp = PoliceQuery();
  ASSERT_EQ(resp.answers_size(), 1);
  ASSERT_EQ(resp.answers(0).status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << resp.answers(0).detail();

  // The agent recorded the disclosure as the gateway did, and which of its
  // records it released.
  AuditEntry at_agent, at_gateway;
  for (const AuditEntry& e : AgentLog()) {
    if (e.method() == "Disclose" && e.request_id() == resp.request_id())
      at_agent = e;
  }
  for (const AuditEntry& e : CheckedAudit(partnership_->SearchAudit())) {
    if (e.method() == "Query" && e.request_id() == resp.request_id())
      at_gateway = e;
  }
  ASSERT_EQ(at_agent.method(), "Disclose");
  EXPECT_EQ(at_agent.caller_org(), "police");
  EXPECT_EQ(at_agent.holder(), kOrg);
  EXPECT_EQ(at_agent.actor().user_id(), "pc-4471");
  EXPECT_EQ(at_agent.rule_id(), at_gateway.rule_id());
  EXPECT_EQ(std::vector<std::string>(at_agent.fields_released().begin(),
                                     at_agent.fields_released().end()),
            std::vector<std::string>(at_gateway.fields_released().begin(),
                                     at_gateway.fields_released().end()));
  EXPECT_THAT(at_agent.record_ids(), ::testing::Contains("RC-2041-R1"));

  // Both exports, each verified with its own key, reconcile.
  const std::string gw_file = partnership_->dir() + "/gateway-export.jsonl";
  const std::string agent_file = partnership_->dir() + "/rc-export.jsonl";
  std::string out;
  // Each export up to a tree head signed just before it (a log signs heads
  // at most a second apart while entries arrive).
  auto export_both = [&] {
    for (const std::string& log :
         {std::string("--as auditor-dpo"), AgentFlags()}) {
      ASSERT_EQ(Ctl(absl::StrCat("audit tree-head ", log), &out), 0) << out;
      ASSERT_EQ(Ctl(absl::StrCat("audit export ", log, " --out ",
                                 log == AgentFlags() ? agent_file : gw_file),
                    &out),
                0)
          << out;
    }
  };
  const std::string reconcile = absl::StrCat(
      "audit reconcile --gateway ", gw_file, " --gateway-key ",
      partnership_->gateway_audit_key(), " --agent ", agent_file,
      " --agent-key ", partnership_->agent_audit_key(kOrg), " --edge 1");
  export_both();
  ASSERT_EQ(Ctl(reconcile, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("no discrepancies"));
  EXPECT_THAT(out, HasSubstr("1 disclosures"));

  // The gateway asks and the holder answers, but the gateway records
  // nothing (as when it stops before its entry): the agent's evidence has
  // no twin. The test presents the gateway's own certificate to the holder
  // API, as the gateway would.
  accord::v1::DiscloseRequest dr;
  dr.set_request_id("crash-after-answer-1");
  dr.set_requester_org("police");
  dr.set_purpose("safeguarding");
  dr.set_mode(accord::v1::QUERY_MODE_RECORDS);
  auto tokens = partnership_->TokensOf(kOrg, "RC-2041");
  ASSERT_TRUE(tokens.ok());
  for (const auto& t : *tokens) *dr.add_subjects() = t;
  SystemClock clock;
  std::vector<std::string> agreements;
  for (const char* a : {"support-coordination", "police-dasv", "childrens-mash",
                        "referral-pathways", "monitoring"}) {
    agreements.push_back(
        absl::StrCat(partnership_->dir(), "/agreements/", a, ".textproto"));
  }
  auto engine = policy::Engine::Create(
      partnership_->dir() + "/partnership.textproto", agreements, &clock);
  ASSERT_TRUE(engine.ok()) << engine.status();
  accord::v1::DecisionRequest d;
  d.set_requester_org("police");
  d.set_holder_org(kOrg);
  d.set_action(accord::v1::ACTION_QUERY);
  d.set_purpose("safeguarding");
  *d.mutable_at() = ToProtoTime(absl::Now());
  *dr.mutable_decision() = (*engine)->DecideProto(d);
  {
    auto holder = accord::v1::Holder::NewStub(
        partnership_->AgentHolderChannel(kOrg, "gateway"));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::DiscloseResponse answer;
    auto status = holder->Disclose(&ctx, dr, &answer);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(answer.status(), accord::v1::HOLDER_STATUS_ANSWERED)
        << answer.detail();
  }
  // Later traffic on both sides, past the edge.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(PoliceQuery().answers(0).status(),
            accord::v1::HOLDER_STATUS_ANSWERED);
  export_both();
  EXPECT_EQ(Ctl(reconcile, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("1 discrepancies"));
  EXPECT_THAT(out, HasSubstr("MISSING AT THE GATEWAY: request "
                             "crash-after-answer-1, police asked rape-crisis"));
  EXPECT_THAT(out, HasSubstr("Nothing reached police"));
  EXPECT_THAT(out, HasSubstr("2 disclosures"));
}

}  // namespace
}  // namespace accord::testing
