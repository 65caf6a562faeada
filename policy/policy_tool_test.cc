// accordctl policy check|test|explain on the example partnership.
#include "policy/policy_tool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "policy/test_util.h"

namespace accord::policy {
namespace {

using ::testing::AllOf;
using testing::ExampleAgreements;
using testing::ExamplePartnership;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::WriteFile;

absl::Time Now() { return testing::InWindow(); }

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/policy_tool_test_", getpid(), "_",
                      name);
}

TEST(PolicyToolTest, CheckPassesOnTheExamples) {
  std::ostringstream out;
  EXPECT_EQ(CheckPolicy(ExamplePartnership(), ExampleAgreements(), Now(), out),
            0)
      << out.str();
  EXPECT_THAT(out.str(),
              AllOf(HasSubstr("OK: 5 agreements"), Not(HasSubstr("error"))));
}

TEST(PolicyToolTest, CheckWarnsAboutReviewAndExpiry) {
  std::ostringstream out;
  EXPECT_EQ(CheckPolicy(ExamplePartnership(), ExampleAgreements(),
                        absl::FromUnixSeconds(1814313600 + 86400), out),
            0);
  EXPECT_THAT(out.str(),
              AllOf(HasSubstr("warning: "), HasSubstr("past its review date"),
                    HasSubstr("police-dasv.textproto:")));
  std::ostringstream expired;
  CheckPolicy(ExamplePartnership(), ExampleAgreements(),
              absl::FromUnixSeconds(1864641600), expired);
  EXPECT_THAT(expired.str(), HasSubstr("can never match again"));
}

TEST(PolicyToolTest, CheckReportsErrorsWithFileAndLine) {
  const std::string bad = TempPath("bad.textproto");
  WriteFile(
      bad,
      testing::AgreementText(
          "bad",
          "  requesters { org_id: \"police\" }\n  action: ACTION_QUERY\n"
          "  holders { org_id: \"refuge\" }\n  purposes: \"safeguarding\"\n"
          "  lawful_basis: LAWFUL_BASIS_PUBLIC_TASK\n"
          "  release { field: \"ethnicity\" transform: TRANSFORM_KEEP }\n",
          R"("police", "refuge")"));
  std::ostringstream out;
  EXPECT_EQ(CheckPolicy(ExamplePartnership(), {bad}, Now(), out), 1);
  EXPECT_THAT(
      out.str(),
      AllOf(HasSubstr(absl::StrCat("error: ", bad, ":15:3: rule \"r1\"")),
            HasSubstr("without art9_condition"), HasSubstr("FAIL")));
}

TEST(PolicyToolTest, TestPassesOnTheExampleSuite) {
  std::ostringstream out;
  const int rc = TestPolicy(
      ExamplePartnership(), ExampleAgreements(),
      {testing::SourceDir() + "/deploy/examples/policy_tests.textproto"}, Now(),
      /*require_every_rule=*/true, out);
  EXPECT_EQ(rc, 0) << out.str();
  EXPECT_THAT(out.str(),
              AllOf(HasSubstr("PASS: police: involvement only"),
                    Not(HasSubstr("FAIL")), Not(HasSubstr("UNTESTED"))));
}

TEST(PolicyToolTest, TestReportsEachMismatch) {
  const std::string suite = TempPath("suite.textproto");
  WriteFile(suite, R"pb(
    cases {
      name: "wrong verdict"
      request {
        requester_org: "police"
        holder_org: "refuge"
        action: ACTION_QUERY
        purpose: "monitoring"
        at { seconds: 1773568800 }
      }
      expect: VERDICT_ALLOW
    }
    cases {
      name: "wrong rule and plan"
      request {
        requester_org: "police"
        holder_org: "refuge"
        action: ACTION_QUERY
        purpose: "safeguarding"
        categories: [ DATA_CATEGORY_RISK ]
        at { seconds: 1773568800 }
      }
      expect: VERDICT_ALLOW
      expect_rule_id: "police-involvement"
      expect_plan {
        releases { category: DATA_CATEGORY_NEEDS transform: TRANSFORM_KEEP }
      }
    }
    cases {
      name: "right"
      request {
        requester_org: "police"
        holder_org: "refuge"
        action: ACTION_QUERY
        purpose: "safeguarding"
        involvement_only: true
        at { seconds: 1773568800 }
      }
      expect: VERDICT_ALLOW
    }
  )pb");
  std::ostringstream out;
  EXPECT_EQ(TestPolicy(ExamplePartnership(), ExampleAgreements(), {suite},
                       Now(), /*require_every_rule=*/false, out),
            1);
  const std::string s = out.str();
  EXPECT_THAT(
      s,
      HasSubstr(
          "FAIL: wrong verdict: expected ALLOW got DENY (PURPOSE_NOT_AGREED)"));
  EXPECT_THAT(
      s,
      HasSubstr(
          "wrong rule: expected 'police-involvement' got 'police-risk-query'"));
  EXPECT_THAT(s,
              HasSubstr("plan differs: missing NEEDS→KEEP; extra RISK→KEEP"));
  EXPECT_THAT(s, HasSubstr("PASS: right"));
  EXPECT_THAT(s, HasSubstr("FAIL: 2/3"));
}

TEST(PolicyToolTest, TestNamesRulesNoPassingCaseExercises) {
  const std::string suite = TempPath("one-rule.textproto");
  WriteFile(suite, R"pb(
    cases {
      name: "involvement"
      request {
        requester_org: "police"
        holder_org: "refuge"
        action: ACTION_QUERY
        purpose: "safeguarding"
        involvement_only: true
        at { seconds: 1773568800 }
      }
      expect: VERDICT_ALLOW
    }
  )pb");
  std::ostringstream lenient, strict;
  EXPECT_EQ(TestPolicy(ExamplePartnership(), ExampleAgreements(), {suite},
                       Now(), /*require_every_rule=*/false, lenient),
            0);
  EXPECT_EQ(TestPolicy(ExamplePartnership(), ExampleAgreements(), {suite},
                       Now(), /*require_every_rule=*/true, strict),
            1);
  EXPECT_THAT(strict.str(),
              AllOf(HasSubstr("UNTESTED: agreement 'northdale-police-dasv' "
                              "rule 'police-risk-query'"),
                    HasSubstr("rules exercised: 1/")));
}

TEST(PolicyToolTest, TestRefusesAnUnreadableSuite) {
  const std::string suite = TempPath("broken.textproto");
  WriteFile(suite, "cases { name: \"x\" request { action: ACTION_NOPE } }\n");
  std::ostringstream out;
  EXPECT_EQ(TestPolicy(ExamplePartnership(), ExampleAgreements(), {suite},
                       Now(), /*require_every_rule=*/false, out),
            2);
  EXPECT_THAT(out.str(), HasSubstr(suite + ":1:"));
}

TEST(PolicyToolTest, ExplainShowsTheReasoning) {
  const std::string request = TempPath("request.textproto");
  WriteFile(request, R"pb(
    requester_org: "police"
    holder_org: "womens-centre"
    action: ACTION_QUERY
    purpose: "crime-prevention"
    fields: [ "date_of_birth", "phone" ]
    categories: [ DATA_CATEGORY_RISK ]
  )pb");
  std::ostringstream out;
  EXPECT_EQ(ExplainPolicy(ExamplePartnership(), ExampleAgreements(), request,
                          Now(), out),
            0);
  const std::string s = out.str();
  EXPECT_THAT(s,
              AllOf(HasSubstr("Agreement 'northdale-police-dasv' v2"),
                    HasSubstr("Agreement 'northdale-mash'"),
                    HasSubstr("rule 'police-involvement'"),
                    HasSubstr("INVOLVEMENT_ONLY"),
                    HasSubstr("rule 'police-risk-query'"), HasSubstr("MATCHES"),
                    HasSubstr("rule 'mash-police-query'"),
                    HasSubstr("holders do not include 'womens-centre'"),
                    HasSubstr("Decision: ALLOW"),
                    HasSubstr("field date_of_birth → DATE_TO_AGE_BAND"),
                    HasSubstr("category RISK → KEEP"),
                    HasSubstr("withheld (not released by this rule): phone")));
}

}  // namespace
}  // namespace accord::policy
