// What a partner's own systems send their agent, checked where it enters,
// through a real gateway and agent on loopback: text the store could not
// read back (or a terminal would obey) is refused by row and field, and a
// row already held that does not read back costs only itself; consent that
// could never apply is refused with the valid values; a second local id for
// a person already held is refused, naming the first, or merged when asked.

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kOrg[] = "rape-crisis";

class AgentInputIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    ASSERT_TRUE(partnership_->StartGateway().ok());
    auto s = partnership_->StartAgent(kOrg);
    ASSERT_TRUE(s.ok()) << s << "\n" << partnership_->agent(kOrg)->Log();
    s = partnership_->LoadExampleData(kOrg);
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() { delete partnership_; }

  static void Deadline(grpc::ClientContext* ctx) { PrepareCall(ctx, 10); }

  std::unique_ptr<accord::v1::AgentLocal::Stub> Local() {
    return accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(kOrg, std::string("org-") + kOrg));
  }

  // The police ask Rape Crisis about Zoë (RC-2041), as in the example
  // partnership: she consented to the police for safeguarding.
  accord::v1::HolderAnswer PoliceQuery() {
    auto resp =
        partnership_->QueryAbout("org-police", kOrg, "RC-2041", "safeguarding",
                                 "pc-4471", "public-protection-officer");
    EXPECT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp.ok() ? resp->answers_size() : 0, 1);
    return resp.ok() && resp->answers_size() > 0 ? resp->answers(0)
                                                 : accord::v1::HolderAnswer();
  }

  static std::vector<std::string> RiskTexts(const accord::v1::HolderAnswer& a) {
    std::vector<std::string> out;
    for (const auto& r : a.records()) {
      if (r.category() == accord::v1::DATA_CATEGORY_RISK)
        out.push_back(r.text());
    }
    return out;
  }

  int64_t CountConsents() {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::ListConsentsRequest req;
    req.set_subject_local_id("RC-2041");
    accord::v1::ListConsentsResponse resp;
    EXPECT_TRUE(Local()->ListConsents(&ctx, req, &resp).ok());
    return resp.consents_size();
  }

  static TestPartnership* partnership_;
};

TestPartnership* AgentInputIntegrationTest::partnership_ = nullptr;

TEST_F(AgentInputIntegrationTest,
       ImportRefusesUnreadableTextAndHerRecordStays) {
  const std::string file = partnership_->dir() + "/risk-update.csv";
  std::ofstream(file, std::ios::trunc)
      << "subject_id,record_id,record_category,record_provenance,record_text\n"
         "RC-2041,RC-2041-R8,risk,opinion,\xff\xfe\n"
         "RC-2041,RC-2041-R9,risk,opinion,\x1b[2K\rno risk\n"
         "RC-2041,RC-2041-R10,risk,fact,\"Bail conditions: no contact.\n"
         "\tReviewed weekly.\"\n";
  std::string output;
  const int rc = partnership_->Accordctl(
      absl::StrCat("import ", file, " --as org-", kOrg, " --agent ",
                   partnership_->local_address(kOrg)),
      &output);
  EXPECT_EQ(rc, 1) << output;
  EXPECT_THAT(output, HasSubstr("read 3 rows: 1 applied, 2 rejected"));
  EXPECT_THAT(output, HasSubstr("row 2: record_text: is not valid UTF-8"));
  EXPECT_THAT(output,
              HasSubstr("row 3: record_text: contains a control character"));
  EXPECT_THAT(output, Not(HasSubstr("\x1b")));

  // Every query about her is still answered, with what was accepted.
  const auto answer = PoliceQuery();
  ASSERT_EQ(answer.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << answer.detail();
  const auto texts = RiskTexts(answer);
  EXPECT_THAT(texts, ::testing::Contains(
                         "Bail conditions: no contact.\n\tReviewed weekly."));
  EXPECT_THAT(texts, ::testing::Contains(HasSubstr("high risk")));
  EXPECT_THAT(texts, Not(::testing::Contains(HasSubstr("no risk"))));
}

TEST_F(AgentInputIntegrationTest,
       AStoredRowThatDoesNotReadBackCostsOnlyItself) {
  // A record as an agent that did not check its input wrote it (the bytes
  // serialise but never parse), written into the running agent's store.
  accord::v1::Record bad;
  bad.set_local_id("RC-2041-OLD");
  bad.set_subject_local_id("RC-2041");
  bad.set_category(accord::v1::DATA_CATEGORY_RISK);
  bad.set_text("\xff\xfe");
  {
    auto db = sqlite::Database::Open(partnership_->dir() +
                                     "/state/agent-rape-crisis.db");
    ASSERT_TRUE(db.ok()) << db.status();
    auto q = (*db)->Prepare(
        "INSERT INTO records(local_id, subject_id, category, body) SELECT ?, "
        "id, ?, ? FROM subjects WHERE local_id = 'RC-2041'");
    ASSERT_TRUE(q.ok()) << q.status();
    q->Bind(1, bad.local_id())
        .Bind(2, static_cast<int64_t>(accord::v1::DATA_CATEGORY_RISK))
        .BindBlob(3, bad.SerializeAsString());
    ASSERT_TRUE(q->Run().ok());
    ASSERT_EQ((*db)->Changes(), 1);
  }
  const auto answer = PoliceQuery();
  ASSERT_EQ(answer.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << answer.detail();
  EXPECT_THAT(RiskTexts(answer), ::testing::Contains(HasSubstr("high risk")));
  bool said = false;
  for (const auto& w : answer.withheld()) {
    if (w.what() == "DATA_CATEGORY_RISK" &&
        absl::StrContains(w.reason(), "could not be read back"))
      said = true;
  }
  EXPECT_TRUE(said) << answer.DebugString();
  EXPECT_THAT(answer.detail(), HasSubstr("1 stored row of records"));
  // The agent's log names the row, never its content.
  EXPECT_THAT(partnership_->agent(kOrg)->Log(), HasSubstr("records row"));
}

TEST_F(AgentInputIntegrationTest, ConsentThatCouldNeverApplyIsRefused) {
  const int64_t before = CountConsents();
  auto consent = [] {
    accord::v1::RecordConsentRequest req;
    auto* c = req.mutable_consent();
    c->set_subject_local_id("RC-2041");
    c->add_granted_to_orgs("law-centre");
    c->add_purposes("referral");
    c->add_categories(accord::v1::DATA_CATEGORY_NEEDS);
    c->mutable_given_at()->set_seconds(1767225600);
    c->set_method(accord::v1::CONSENT_METHOD_VERBAL);
    c->set_recorded_by("ISVA Carys Lindqvist");
    return req;
  };
  auto org = consent();
  org.mutable_consent()->set_granted_to_orgs(0, "law-center");
  auto purpose = consent();
  purpose.mutable_consent()->set_purposes(0, "referrals");
  const std::vector<std::pair<accord::v1::RecordConsentRequest, std::string>>
      cases = {
          {org,
           "field consent.granted_to_orgs[0]: names an organisation that is "
           "not in the partnership (did you mean 'law-centre'? valid: "},
          {purpose,
           "field consent.purposes[0]: names a purpose that is not one of the "
           "partnership's (did you mean 'referral'? valid: "},
      };
  for (const auto& [req, want] : cases) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::RecordConsentResponse resp;
    auto status = Local()->RecordConsent(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), StartsWith(want));
  }
  EXPECT_EQ(CountConsents(), before);
  // The terms spelt right are recorded.
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::RecordConsentResponse resp;
  auto status = Local()->RecordConsent(&ctx, consent(), &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(CountConsents(), before + 1);
}

TEST_F(AgentInputIntegrationTest, ASecondIdForHerIsRefusedAndQueriesStayClear) {
  accord::v1::UpsertSubjectRequest req;
  req.mutable_subject()->set_local_id("RC-9999");
  auto& fields = *req.mutable_subject()->mutable_fields();
  fields["given_name"] = "ZOE";
  fields["family_name"] = "ashworth hale";
  fields["date_of_birth"] = "14/05/1991";
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::UpsertSubjectResponse resp;
    auto status = Local()->UpsertSubject(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_THAT(status.error_message(),
                HasSubstr("same name and date of birth of subject 'RC-2041'"));
  }
  // Not ambiguous: the police still get their answer.
  EXPECT_EQ(PoliceQuery().status(), accord::v1::HOLDER_STATUS_ANSWERED);

  // Named for merging, the duplicate's id must be one held for her.
  req.add_merge_local_ids("RC-0001");
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::UpsertSubjectResponse resp;
  auto status = Local()->UpsertSubject(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("subject 'RC-2041'"));
  EXPECT_EQ(PoliceQuery().status(), accord::v1::HOLDER_STATUS_ANSWERED);
}

TEST_F(AgentInputIntegrationTest,
       LocalApiRefusesTextANameOrTerminalCannotHold) {
  accord::v1::UpsertRecordRequest req;
  auto* r = req.mutable_record();
  r->set_local_id("RC-2041-R11");
  r->set_subject_local_id("RC-2041");
  r->set_category(accord::v1::DATA_CATEGORY_RISK);
  r->set_provenance(accord::v1::PROVENANCE_FACT);
  r->set_text("safe\rEVIL");
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::UpsertRecordResponse resp;
  auto status = Local()->UpsertRecord(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              StartsWith("field record.text contains a control character"));
  EXPECT_THAT(RiskTexts(PoliceQuery()),
              Not(::testing::Contains(HasSubstr("EVIL"))));
}

TEST_F(AgentInputIntegrationTest, AnOldDuplicateIsMergedOverTheWire) {
  // A second id for Zoë with a record of its own, as an agent that did not
  // check would have held it.
  auto tokens = partnership_->TokensOf(kOrg, "RC-2041");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  accord::v1::Subject old;
  old.set_local_id("RC-OLD");
  (*old.mutable_fields())["given_name"] = "Zoë";
  (*old.mutable_fields())["family_name"] = "Ashworth-Hale";
  (*old.mutable_fields())["date_of_birth"] = "1991-05-14";
  accord::v1::Record note;
  note.set_local_id("RC-OLD-R1");
  note.set_subject_local_id("RC-OLD");
  note.set_category(accord::v1::DATA_CATEGORY_RISK);
  note.set_provenance(accord::v1::PROVENANCE_FACT);
  note.set_text("Old risk note.");
  {
    auto db = sqlite::Database::Open(partnership_->dir() +
                                     "/state/agent-rape-crisis.db");
    ASSERT_TRUE(db.ok()) << db.status();
    auto q = (*db)->Prepare(
        "INSERT INTO subjects(local_id, body, updated_at) VALUES(?, ?, 0)");
    ASSERT_TRUE(q.ok());
    q->Bind(1, old.local_id()).BindBlob(2, old.SerializeAsString());
    ASSERT_TRUE(q->Run().ok());
    const int64_t id = (*db)->LastInsertRowId();
    for (const auto& t : *tokens) {
      auto tq = (*db)->Prepare(
          "INSERT INTO subject_tokens(token, kind, subject_id) VALUES(?,?,?)");
      ASSERT_TRUE(tq.ok());
      tq->BindBlob(1, absl::HexStringToBytes(t.value()))
          .Bind(2, static_cast<int64_t>(t.kind()))
          .Bind(3, id);
      ASSERT_TRUE(tq->Run().ok());
    }
    auto rq = (*db)->Prepare(
        "INSERT INTO records(local_id, subject_id, category, body) "
        "VALUES(?,?,?,?)");
    ASSERT_TRUE(rq.ok());
    rq->Bind(1, note.local_id())
        .Bind(2, id)
        .Bind(3, static_cast<int64_t>(note.category()))
        .BindBlob(4, note.SerializeAsString());
    ASSERT_TRUE(rq->Run().ok());
  }
  // Held twice, she cannot be found by anyone.
  auto ambiguous = PoliceQuery();
  EXPECT_EQ(ambiguous.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(ambiguous.detail(), HasSubstr("more than one person"));

  accord::v1::UpsertSubjectRequest req;
  *req.mutable_subject() = old;
  req.mutable_subject()->set_local_id("RC-2041");
  req.add_merge_local_ids("RC-OLD");
  grpc::ClientContext ctx;
  PrepareCall(&ctx, 10, "dpo-ann", "data-protection-officer");
  accord::v1::UpsertSubjectResponse resp;
  auto status = Local()->UpsertSubject(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(resp.merged_local_ids(), ::testing::ElementsAre("RC-OLD"));

  // One person again, with the merged id's record.
  const auto answer = PoliceQuery();
  ASSERT_EQ(answer.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << answer.detail();
  EXPECT_THAT(RiskTexts(answer), ::testing::Contains("Old risk note."));
  // And the agent's own log says who merged what.
  auto log = partnership_->SearchAgentAudit(kOrg);
  ASSERT_TRUE(log.ok()) << log.status();
  bool recorded = false;
  for (const auto& e : *log) {
    if (e.detail() == "merged local ids RC-OLD into RC-2041 (one person)" &&
        e.actor().user_id() == "dpo-ann")
      recorded = true;
  }
  EXPECT_TRUE(recorded);
}

}  // namespace
}  // namespace accord::testing
