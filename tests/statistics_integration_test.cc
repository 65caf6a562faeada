// Monitoring statistics end to end: five real agents loaded with engagements
// of the common dataset in two quarters, a real gateway adding up their
// counts. The per-partner, per-period table equals what was loaded (the
// counts are chosen as multiples of 5 of at least 10, so disclosure control
// leaves them as they are); a woman known to two partners counts once among
// the partnership's unique people; the gateway's database and log hold no
// token of the cohort; refusals (no agreement for the purpose, a breakdown
// the rule does not allow) are refused with the reason and audited.

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/crypto.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using ::testing::HasSubstr;

const char* const kPartners[] = {"womens-centre", "rape-crisis", "refuge",
                                 "law-centre", "employment"};
// 2026-04-01, 2026-07-01, 2026-10-01 (UTC).
constexpr int64_t kQ2 = 1775001600, kQ3 = 1782864000, kQ4 = 1790812800;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class StatisticsIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    // This partnership's monitoring rule does not allow figures by
    // disability.
    const std::string agreement =
        partnership_->dir() + "/agreements/monitoring.textproto";
    std::string text = ReadFile(agreement);
    ASSERT_NE(text.find("\"disability\", "), std::string::npos);
    text = absl::StrReplaceAll(text, {{"\"disability\", ", ""}});
    std::ofstream(agreement) << text;
    ASSERT_TRUE(partnership_->StartAll().ok());
    tokens_ = new std::vector<std::string>;
    for (int k = 0; k < 5; ++k) Load(k);
  }
  static void TearDownTestSuite() {
    delete partnership_;
    delete tokens_;
  }

  // Partner k: in Q2, 10 + 5k women (sex recorded FEMALE); in Q3, 10 women
  // recorded FEMALE and 10 NOT_STATED. Partners 0 and 1 share their first 10
  // women of Q2 (same names and dates of birth).
  static void Load(int k) {
    const std::string org = kPartners[k];
    auto stub = accord::v1::AgentLocal::NewStub(
        partnership_->AgentLocalChannel(org, "org-" + org));
    const std::string service = org == "womens-centre" ? "drop-in"
                                : org == "rape-crisis" ? "isva"
                                : org == "refuge"      ? "idva"
                                : org == "law-centre"  ? "family-law"
                                                       : "skills";
    auto add = [&](const std::string& person, int64_t start,
                   accord::v1::Sex sex) {
      const bool shared = absl::StartsWith(person, "shared-");
      accord::v1::UpsertSubjectRequest us;
      auto* s = us.mutable_subject();
      s->set_local_id(absl::StrCat(org, "-", person));
      (*s->mutable_fields())["given_name"] = "Monitoring";
      (*s->mutable_fields())["family_name"] =
          shared ? absl::StrCat("Person ", person)
                 : absl::StrCat("Person ", org, " ", person);
      (*s->mutable_fields())["date_of_birth"] = "1990-05-17";
      accord::v1::UpsertSubjectResponse ur;
      grpc::ClientContext c1;
      PrepareCall(&c1);
      ASSERT_TRUE(stub->UpsertSubject(&c1, us, &ur).ok());
      for (const auto& t : ur.tokens()) tokens_->push_back(t.value());
      accord::v1::RecordEngagementRequest er;
      auto* e = er.mutable_engagement();
      e->set_subject_local_id(s->local_id());
      e->set_service(service);
      e->mutable_started_at()->set_seconds(start);
      e->set_referral_source(accord::v1::REFERRAL_SOURCE_SELF);
      e->mutable_monitoring()->set_sex(sex);
      e->mutable_monitoring()->set_ethnicity(
          accord::v1::ETHNICITY_WHITE_BRITISH);
      accord::v1::RecordEngagementResponse eresp;
      grpc::ClientContext c2;
      PrepareCall(&c2);
      const grpc::Status st = stub->RecordEngagement(&c2, er, &eresp);
      ASSERT_TRUE(st.ok()) << st.error_message();
    };
    for (int i = 0; i < 10 + 5 * k; ++i) {
      const bool shared = k <= 1 && i < 10;
      add(shared ? absl::StrCat("shared-", i) : absl::StrCat("q2-", i),
          kQ2 + 86400 * (i % 80), accord::v1::SEX_FEMALE);
    }
    for (int i = 0; i < 20; ++i) {
      add(absl::StrCat("q3-", i), kQ3 + 86400 * (i % 80),
          i < 10 ? accord::v1::SEX_FEMALE : accord::v1::SEX_NOT_STATED);
    }
  }

  static accord::v1::StatisticsRequest Request() {
    accord::v1::StatisticsRequest r;
    r.set_purpose("monitoring");
    r.mutable_range()->mutable_from()->set_seconds(kQ2);
    r.mutable_range()->mutable_until()->set_seconds(kQ4);
    r.set_period(accord::v1::REPORTING_PERIOD_QUARTER);
    r.add_dimensions("sex");
    for (const char* org : kPartners) r.add_holders(org);
    r.set_completeness(true);
    return r;
  }

  static grpc::Status Run(const accord::v1::StatisticsRequest& r,
                          accord::v1::StatisticsResponse* out) {
    auto stub = accord::v1::Gateway::NewStub(
        partnership_->GatewayChannel("org-womens-centre"));
    grpc::ClientContext ctx;
    PrepareCall(&ctx, 30, "coordinator", "partnership-coordinator");
    return stub->Statistics(&ctx, r, out);
  }

  static TestPartnership* partnership_;
  static std::vector<std::string>* tokens_;
};

TestPartnership* StatisticsIntegrationTest::partnership_ = nullptr;
std::vector<std::string>* StatisticsIntegrationTest::tokens_ = nullptr;

TEST_F(StatisticsIntegrationTest, TheTablesAreTheCountsLoaded) {
  accord::v1::StatisticsResponse r;
  const grpc::Status s = Run(Request(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.holders_included_size(), 5);
  EXPECT_EQ(r.holders_missing_size(), 0);
  EXPECT_EQ(r.suppression_threshold(), 7u);
  EXPECT_EQ(r.rounding(), 5u);

  // The expected counts, before suppression: partner -> period -> sex -> n.
  std::map<std::string, std::map<std::string, std::map<std::string, uint64_t>>>
      want;
  for (int k = 0; k < 5; ++k) {
    want[kPartners[k]]["2026-Q2"]["female"] = 10 + 5 * k;
    want[kPartners[k]]["2026-Q3"]["female"] = 10;
    want[kPartners[k]]["2026-Q3"]["not_stated"] = 10;
  }
  int tables = 0;
  for (const auto& t : r.tables()) {
    if (t.dimension() != "sex") continue;
    ++tables;
    ASSERT_EQ(t.rows_size(), 6) << t.period();
    uint64_t all_total = 0;
    for (const auto& row : t.rows()) {
      uint64_t total = 0;
      for (int c = 0; c < t.columns_size(); ++c) {
        const auto& cell = row.cells(c);
        EXPECT_FALSE(cell.suppressed()) << t.period() << " " << row.org();
        if (t.columns(c) == "total") {
          EXPECT_EQ(cell.count(), total) << t.period() << " " << row.org();
          if (row.org() == "all") all_total = cell.count();
          continue;
        }
        total += cell.count();
        if (row.org() != "all") {
          EXPECT_EQ(cell.count(), want[row.org()][t.period()][t.columns(c)])
              << t.period() << " " << row.org() << " " << t.columns(c);
        }
      }
    }
    EXPECT_EQ(all_total, t.period() == "2026-Q2" ? 100u : 100u);
  }
  EXPECT_EQ(tables, 2);

  // Unique people: the ten women known to two partners count once.
  std::map<std::string, uint64_t> people;
  for (const auto& p : r.people()) {
    if (p.period() == "2026-Q2") people[p.org()] = p.people().count();
  }
  EXPECT_EQ(people["womens-centre"], 10u);
  EXPECT_EQ(people["rape-crisis"], 15u);
  EXPECT_EQ(people["all"], 90u);  // 100 engagements, 90 women
  // Completeness: sex recorded for every engagement, disability for none.
  for (const auto& c : r.completeness()) {
    if (c.field() == "sex") {
      EXPECT_EQ(c.recorded_percent(), 100) << c.org();
    }
    if (c.field() == "disability") {
      EXPECT_EQ(c.recorded_percent(), 0) << c.org();
    }
  }

  // The gateway's state and log hold no token of the cohort, in hex or as
  // bytes.
  std::vector<std::string> gateway_files;
  for (const auto& f :
       std::filesystem::directory_iterator(partnership_->dir() + "/state")) {
    if (absl::StartsWith(f.path().filename().string(), "gateway"))
      gateway_files.push_back(ReadFile(f.path().string()));
  }
  ASSERT_FALSE(gateway_files.empty());
  gateway_files.push_back(partnership_->gateway()->Log());
  ASSERT_GE(tokens_->size(), 100u);
  for (const auto& token : *tokens_) {
    auto bytes = HexDecode(token);
    ASSERT_TRUE(bytes.ok());
    for (const auto& content : gateway_files) {
      ASSERT_EQ(content.find(token), std::string::npos);
      ASSERT_EQ(content.find(bytes->substr(0, 16)), std::string::npos);
    }
  }
}

TEST_F(StatisticsIntegrationTest, SmallNumbersAreHidden) {
  // Only partner 0, only Q3 by sex with all the dataset's extras.
  auto req = Request();
  req.clear_holders();
  req.add_holders("womens-centre");
  req.clear_dimensions();
  req.add_dimensions("referral_source");
  accord::v1::StatisticsResponse r;
  ASSERT_TRUE(Run(req, &r).ok());
  // 20 engagements in Q3, all self-referred: shown; every other source 0.
  for (const auto& t : r.tables()) {
    if (t.period() != "2026-Q3" || t.dimension() != "referral_source") continue;
    EXPECT_EQ(t.rows(0).cells(0).count(), 20u);
    EXPECT_EQ(t.columns(0), "self");
  }
}

TEST_F(StatisticsIntegrationTest, RefusalsAreRefusedWithTheReasonAndAudited) {
  auto no_agreement = Request();
  no_agreement.set_purpose("safeguarding");
  no_agreement.set_request_id("stats-no-agreement");
  accord::v1::StatisticsResponse r;
  grpc::Status s = Run(no_agreement, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("safeguarding"));

  auto not_allowed = Request();
  not_allowed.clear_dimensions();
  not_allowed.add_dimensions("disability");
  not_allowed.set_request_id("stats-not-allowed");
  s = Run(not_allowed, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("does not allow figures by disability"));

  auto unknown = Request();
  unknown.add_dimensions("shoe_size");
  s = Run(unknown, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("'shoe_size' is not a dimension of the monitoring "
                        "dataset"));

  accord::v1::AuditSearchRequest filter;
  filter.set_caller_org("womens-centre");
  auto entries = partnership_->SearchAudit(filter);
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::map<std::string, accord::v1::AuditEntry> by_request;
  for (const auto& e : *entries) {
    if (e.method() == "Statistics") by_request[e.request_id()] = e;
  }
  ASSERT_TRUE(by_request.count("stats-no-agreement"));
  EXPECT_EQ(by_request["stats-no-agreement"].decision(),
            accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(by_request["stats-no-agreement"].action(),
            accord::v1::ACTION_STATISTICS);
  ASSERT_TRUE(by_request.count("stats-not-allowed"));
  EXPECT_EQ(by_request["stats-not-allowed"].decision(),
            accord::v1::AUDIT_DECISION_DENY);
  EXPECT_THAT(by_request["stats-not-allowed"].deny_reason(),
              HasSubstr("disability"));
  EXPECT_THAT(by_request["stats-not-allowed"].fields_released(),
              ::testing::Contains("dimension:disability"));

  // Each agent keeps its own record of the runs it answered.
  auto agent_entries = partnership_->SearchAgentAudit("refuge");
  ASSERT_TRUE(agent_entries.ok()) << agent_entries.status();
  int runs = 0;
  for (const auto& e : *agent_entries) runs += e.method() == "Statistics";
  EXPECT_GE(runs, 1);
}

}  // namespace
}  // namespace accord::testing
