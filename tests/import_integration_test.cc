// Bulk import through a real agent's local API over mutual TLS: `accordctl
// import` loads a spreadsheet export with good and bad rows and reports the
// bad ones by row and column, writing nothing of them; the local API refuses
// every identity but the agent's own organisation's.

#include <chrono>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "accord/v1/agent.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOrg[] = "womens-centre";

class ImportIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    auto s = partnership_->StartAgent(kOrg);
    ASSERT_TRUE(s.ok()) << s << "\n" << partnership_->agent(kOrg)->Log();
  }
  static void TearDownTestSuite() { delete partnership_; }

  static void Deadline(grpc::ClientContext* ctx) { PrepareCall(ctx, 10); }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = partnership_->dir() + "/" + name;
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }

  grpc::Status Tokens(const std::string& local_id) {
    auto stub = accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(kOrg, std::string("org-") + kOrg));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::SubjectTokensRequest req;
    req.set_subject_local_id(local_id);
    accord::v1::SubjectTokensResponse resp;
    return stub->SubjectTokens(&ctx, req, &resp);
  }

  // Streams `text` in small chunks as `cert_name`.
  grpc::Status StreamImport(const std::string& cert_name,
                            accord::v1::ImportFormat format,
                            const std::string& text,
                            accord::v1::ImportReport* report) {
    auto stub = accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(kOrg, cert_name));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    auto writer = stub->Import(&ctx, report);
    accord::v1::ImportRow msg;
    msg.set_format(format);
    for (size_t i = 0; i < text.size(); i += 17) {
      msg.set_chunk(text.substr(i, 17));
      if (!writer->Write(msg)) break;
      msg.clear_format();
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static TestPartnership* partnership_;
};

TestPartnership* ImportIntegrationTest::partnership_ = nullptr;

TEST_F(ImportIntegrationTest, AccordctlImportReportsBadRowsAndWritesGoodOnes) {
  const std::string file = WriteFile(
      "clients.csv",
      "Subject ID,Given Name,Family Name,Date of Birth,Postcode,"
      "Record ID,Record Category,Record Provenance,Record Date,Record Text,"
      "Consent ID,Consent To Orgs,Consent Purposes,Consent Categories,"
      "Consent Given,Consent Method,Consent Recorded By\r\n"
      "WC-9001,Maya,Okonkwo,12/06/1988,ND1 2AB,WC-9001-R1,needs,fact,"
      "01/03/2026,\"Wants advice on housing, and counselling.\",WC-9001-C1,"
      "refuge;law-centre,support-coordination,identity;needs,01/03/2026,"
      "written,Key worker Asha\r\n"
      "WC-9002,Lena,Marsh,31/02/1990,,,,,,,,,,,,,\r\n"
      "WC-9003,Ruth,Adebayo,1979-11-30,ND3 9XY,WC-9003-R1,risk,,2026-03-02,"
      "Risk noted.,,,,,,,\r\n"
      "WC-9004,Iris,Fenwick,1995-07-04,,,,,,,WC-9004-C1,refuge,"
      "support-coordination,identity,2026-03-01,written,Key worker Asha\r\n");
  std::string output;
  const int rc = partnership_->Accordctl(
      absl::StrCat("import ", file, " --as org-", kOrg, " --agent ",
                   partnership_->local_address(kOrg)),
      &output);
  EXPECT_EQ(rc, 1) << output;  // some rows rejected
  EXPECT_THAT(output, HasSubstr("read 4 rows: 2 applied, 2 rejected"));
  EXPECT_THAT(output, HasSubstr("row 3: date_of_birth:"));
  EXPECT_THAT(output, HasSubstr("row 4: record_provenance:"));
  // A value is never echoed back.
  EXPECT_THAT(output, Not(HasSubstr("31/02/1990")));

  EXPECT_TRUE(Tokens("WC-9001").ok());
  EXPECT_TRUE(Tokens("WC-9004").ok());
  // Nothing of a rejected row was written, not even its valid subject part.
  EXPECT_EQ(Tokens("WC-9002").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Tokens("WC-9003").error_code(), grpc::StatusCode::NOT_FOUND);

  // The consent history shows the imported consent as recorded.
  std::string consents;
  ASSERT_EQ(partnership_->Accordctl(
                absl::StrCat("agent consents WC-9001 --as org-", kOrg,
                             " --agent ", partnership_->local_address(kOrg)),
                &consents),
            0)
      << consents;
  EXPECT_THAT(consents, HasSubstr("WC-9001-C1 given 2026-03-01 (written"));

  // Importing the same file again changes nothing and rejects the same rows.
  std::string again;
  EXPECT_EQ(partnership_->Accordctl(
                absl::StrCat("import ", file, " --as org-", kOrg, " --agent ",
                             partnership_->local_address(kOrg)),
                &again),
            1);
  EXPECT_THAT(again, HasSubstr("subjects: 0 new, 0 updated"));
  EXPECT_THAT(again, HasSubstr("consents: 0 recorded"));
}

TEST_F(ImportIntegrationTest, JsonLinesStreamInSmallChunks) {
  accord::v1::ImportReport report;
  const std::string text =
      "{\"subject_id\": \"WC-9101\", \"given_name\": \"Nadia\", "
      "\"family_name\": \"Kaur\", \"date_of_birth\": \"1992-02-29\", "
      "\"engagement_service\": \"drop-in\", \"engagement_started\": "
      "\"2026-01-05\", \"engagement_needs\": [\"housing\", \"legal\"]}\n"
      "{\"subject_id\": \"WC-9102\", \"given_name\": 7}\n";
  auto status = StreamImport(std::string("org-") + kOrg,
                             accord::v1::IMPORT_FORMAT_JSONL, text, &report);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(report.rows_read(), 2u);
  EXPECT_EQ(report.rows_applied(), 1u);
  EXPECT_EQ(report.engagements_written(), 1u);
  ASSERT_EQ(report.rejected_size(), 1);
  EXPECT_EQ(report.rejected(0).row(), 2u);
  EXPECT_THAT(report.rejected(0).reason(), HasSubstr("given_name:"));
  EXPECT_TRUE(Tokens("WC-9101").ok());
}

TEST_F(ImportIntegrationTest, WholeFileProblemsAreInvalidArgument) {
  accord::v1::ImportReport report;
  auto status =
      StreamImport(std::string("org-") + kOrg, accord::v1::IMPORT_FORMAT_CSV,
                   "subject_id,shoe_size\nWC-1,5\n", &report);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("shoe_size"));
  EXPECT_EQ(Tokens("WC-1").error_code(), grpc::StatusCode::NOT_FOUND);

  auto no_format = StreamImport(std::string("org-") + kOrg,
                                accord::v1::IMPORT_FORMAT_UNSPECIFIED,
                                "subject_id\nWC-2\n", &report);
  EXPECT_EQ(no_format.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(no_format.error_message(), HasSubstr("format"));
}

TEST_F(ImportIntegrationTest, LocalApiRefusesOtherOrganisationsIdentities) {
  const std::string csv =
      "subject_id,given_name,family_name,date_of_birth\n"
      "WC-9201,Eve,Intruder,1990-01-01\n";
  // Another partner's organisation, the agent identities (including this
  // organisation's own agent's) and the gateway are all refused.
  for (const std::string cert :
       {"org-police", "org-refuge", "agent-womens-centre", "agent-police",
        "gateway"}) {
    accord::v1::ImportReport report;
    auto status =
        StreamImport(cert, accord::v1::IMPORT_FORMAT_CSV, csv, &report);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << cert << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("may not use the local API"))
        << cert;

    auto stub = accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(kOrg, cert));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::ListConsentsRequest req;
    req.set_subject_local_id("WC-9001");
    accord::v1::ListConsentsResponse resp;
    EXPECT_EQ(stub->ListConsents(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << cert;
  }
  EXPECT_EQ(Tokens("WC-9201").error_code(), grpc::StatusCode::NOT_FOUND);

  // accordctl as the police, pointed at the women's centre's agent: refused
  // (accordctl also insists on talking to the police's own agent, so the
  // connection fails before the agent's check), and nothing written.
  const std::string file = WriteFile("intruder.csv", csv);
  std::string output;
  EXPECT_EQ(partnership_->Accordctl(
                absl::StrCat("import ", file, " --as org-police --agent ",
                             partnership_->local_address(kOrg)),
                &output),
            1)
      << output;
  EXPECT_EQ(Tokens("WC-9201").error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace accord::testing
