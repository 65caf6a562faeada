// Loading and validating agreements: every bad input is refused with a
// message naming file:line and the rule or field at fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "policy/policy.h"
#include "policy/test_util.h"

namespace accord::policy {
namespace {

using testing::AgreementText;
using ::testing::AllOf;
using testing::CompileOne;
using ::testing::HasSubstr;
using testing::kPartnership;
using testing::kSupportRule;

std::string Error(const std::string& text) {
  auto p = CompileOne(text);
  EXPECT_FALSE(p.ok());
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

// The support rule with one line replaced (0-based line of the body).
std::string Body(int replace_line, const std::string& with) {
  std::vector<std::string> lines = absl::StrSplit(kSupportRule, '\n');
  lines[replace_line] = with;
  return absl::StrJoin(lines, "\n");
}

TEST(LoaderTest, ValidAgreementCompiles) {
  auto p = CompileOne(AgreementText("a1", kSupportRule));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->agreement_count(), 1);
  EXPECT_EQ((*p)->rule_count(), 1);
}

TEST(LoaderTest, SyntaxErrorNamesFileLineColumn) {
  EXPECT_THAT(Error(AgreementText("a1", Body(1, "  action: ACTION_QUERRY"))),
              HasSubstr("a.textproto:11:"));
}

TEST(LoaderTest, DuplicateAgreementIds) {
  auto p = PolicySet::Compile(
      {"p.textproto", kPartnership},
      {{"one.textproto", AgreementText("same", kSupportRule)},
       {"two.textproto", AgreementText("same", kSupportRule)}});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), AllOf(HasSubstr("two.textproto:1:1"),
                                          HasSubstr("agreement id \"same\""),
                                          HasSubstr("one.textproto")));
}

TEST(LoaderTest, DuplicateRuleIds) {
  const std::string text = AgreementText(
      "a1", kSupportRule, R"("vol-a", "vol-b")",
      absl::StrCat("rules {\n  id: \"r1\"\n", kSupportRule, "}\n"));
  // The second rule opens on line 20, its id on line 21.
  EXPECT_THAT(Error(text), AllOf(HasSubstr("a.textproto:21:3"),
                                 HasSubstr("rule id \"r1\"")));
}

TEST(LoaderTest, EmptyParties) {
  EXPECT_THAT(Error(AgreementText("a1", kSupportRule, "")),
              HasSubstr("parties"));
}

TEST(LoaderTest, UnknownPartyAndUnknownOrNonPartyRuleOrgs) {
  EXPECT_THAT(Error(AgreementText("a1", kSupportRule, R"("vol-a", "nobody")")),
              AllOf(HasSubstr("a.textproto:4:"), HasSubstr("\"nobody\"")));
  EXPECT_THAT(
      Error(AgreementText("a1", Body(0, "  requesters { org_id: \"ghost\" }"))),
      AllOf(HasSubstr("a.textproto:10:3"), HasSubstr("rule \"r1\""),
            HasSubstr("unknown organisation \"ghost\"")));
  // council exists but is not a party.
  EXPECT_THAT(
      Error(AgreementText("a1", Body(2, "  holders { org_id: \"council\" }"))),
      AllOf(HasSubstr("a.textproto:12:3"), HasSubstr("rule \"r1\""),
            HasSubstr("not a party")));
}

TEST(LoaderTest, UnknownPurpose) {
  EXPECT_THAT(Error(AgreementText("a1", Body(3, "  purposes: \"gossip\""))),
              AllOf(HasSubstr("a.textproto:13:3"), HasSubstr("rule \"r1\""),
                    HasSubstr("unknown purpose \"gossip\"")));
}

TEST(LoaderTest, UnknownField) {
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(6,
                             "  release { field: \"shoe_size\" transform: "
                             "TRANSFORM_KEEP }"))),
              AllOf(HasSubstr("a.textproto:16:"), HasSubstr("rule \"r1\""),
                    HasSubstr("unknown field \"shoe_size\"")));
}

TEST(LoaderTest, TransformMustFitTheFieldKind) {
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(6,
                             "  release { field: \"postcode\" transform: "
                             "TRANSFORM_DATE_TO_AGE_BAND }"))),
              AllOf(HasSubstr("a.textproto:16:"), HasSubstr("rule \"r1\""),
                    HasSubstr("TRANSFORM_DATE_TO_AGE_BAND"),
                    HasSubstr("\"postcode\"")));
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(8,
                             "  release { category: DATA_CATEGORY_NEEDS "
                             "transform: TRANSFORM_PSEUDONYMISE }"))),
              AllOf(HasSubstr("a.textproto:18:"), HasSubstr("NEEDS")));
}

TEST(LoaderTest, ReleasingTheSameItemTwice) {
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(7,
                             "  release { field: \"given_name\" transform: "
                             "TRANSFORM_PSEUDONYMISE }"))),
              AllOf(HasSubstr("a.textproto:17:"), HasSubstr("twice")));
}

TEST(LoaderTest, SpecialCategoryNeedsArt9) {
  EXPECT_THAT(
      Error(
          AgreementText("a1", Body(8,
                                   "  release { category: DATA_CATEGORY_HEALTH "
                                   "transform: TRANSFORM_KEEP }"))),
      AllOf(HasSubstr("a.textproto:18:3"),
            HasSubstr("rule \"r1\" releases special category HEALTH without "
                      "art9_condition")));
  EXPECT_THAT(
      Error(AgreementText("a1", Body(8,
                                     "  release { field: \"ethnicity\" "
                                     "transform: TRANSFORM_KEEP }"))),
      HasSubstr(
          "special category ETHNICITY (field \"ethnicity\") without art9"));
  // With a condition it loads.
  EXPECT_TRUE(
      CompileOne(AgreementText(
                     "a1", Body(8,
                                "  release { field: \"disability\" transform: "
                                "TRANSFORM_KEEP }\n  art9_condition: "
                                "ART9_CONDITION_EXPLICIT_CONSENT")))
          .ok());
}

TEST(LoaderTest, OffendingNeedsArt10) {
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(8,
                             "  release { category: DATA_CATEGORY_OFFENDING "
                             "transform: TRANSFORM_KEEP }"))),
              AllOf(HasSubstr("a.textproto:18:3"), HasSubstr("rule \"r1\""),
                    HasSubstr("without art10_condition")));
}

TEST(LoaderTest, ConsentBasisWithoutConsentRequired) {
  EXPECT_THAT(Error(AgreementText("a1", Body(5, "  consent_required: false"))),
              AllOf(HasSubstr("a.textproto:14:3"), HasSubstr("rule \"r1\""),
                    HasSubstr("LAWFUL_BASIS_CONSENT")));
}

TEST(LoaderTest, NoConsentClauseNeedsReasonsAndConsentRequired) {
  const std::string head =
      "  requesters { kind: ORG_KIND_VOLUNTARY }\n"  // 10
      "  action: ACTION_QUERY\n"                     // 11
      "  holders { kind: ORG_KIND_VOLUNTARY }\n"     // 12
      "  purposes: \"support\"\n"                    // 13
      "  release { category: DATA_CATEGORY_NEEDS transform: TRANSFORM_KEEP "
      "}\n";  // 14
  const std::string no_reasons =
      "  no_consent { basis: NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM "
      "approver_role: \"x\" }\n";
  const std::string clause =
      "  no_consent { basis: NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM "
      "accepted_reasons: "
      "CONSENT_NOT_SOUGHT_REASON_CANNOT_BE_GIVEN }\n";
  // Line 15: the clause; line 16: lawful basis; line 17: consent_required.
  EXPECT_THAT(
      Error(AgreementText("a1", head + no_reasons +
                                    "  lawful_basis: LAWFUL_BASIS_PUBLIC_TASK\n"
                                    "  consent_required: true\n")),
      AllOf(HasSubstr("a.textproto:15:3"), HasSubstr("accepted_reasons")));
  EXPECT_THAT(
      Error(AgreementText("a1", head + clause +
                                    "  lawful_basis: LAWFUL_BASIS_PUBLIC_TASK\n"
                                    "  consent_required: false\n")),
      AllOf(HasSubstr("a.textproto:15:3"), HasSubstr("rule \"r1\""),
            HasSubstr("has a no_consent clause but does not require consent")));
  // A clause cannot set aside consent the rule rests on.
  EXPECT_THAT(
      Error(AgreementText("a1", head + clause +
                                    "  lawful_basis: LAWFUL_BASIS_CONSENT\n"
                                    "  consent_required: true\n")),
      AllOf(HasSubstr("a.textproto:15:3"),
            HasSubstr("rests on LAWFUL_BASIS_CONSENT")));
  // And the valid form loads.
  EXPECT_TRUE(
      CompileOne(
          AgreementText("a1", head + clause +
                                  "  lawful_basis: LAWFUL_BASIS_PUBLIC_TASK\n"
                                  "  consent_required: true\n"))
          .ok());
}

TEST(LoaderTest, ValidityWindow) {
  std::string text = AgreementText("a1", kSupportRule);
  text.replace(text.find("1861920000"), 10, "1767225600");
  EXPECT_THAT(Error(text),
              AllOf(HasSubstr("a.textproto:6:1"),
                    HasSubstr("valid_until must be after valid_from")));
}

TEST(LoaderTest, RuleThatReleasesNothing) {
  std::string body = kSupportRule;
  body = body.substr(0, body.find("  release"));
  EXPECT_THAT(
      Error(AgreementText("a1", body)),
      AllOf(HasSubstr("a.textproto:8:1"), HasSubstr("releases nothing")));
}

TEST(LoaderTest, InvolvementOnlyRuleReleasesNothing) {
  EXPECT_THAT(Error(AgreementText(
                  "a1", Body(5,
                             "  consent_required: true\n  involvement_only: "
                             "true"))),
              HasSubstr("involvement_only and must not release"));
}

TEST(LoaderTest, UnspecifiedEnumsAreRefusedBySchema) {
  EXPECT_THAT(Error(AgreementText("a1", Body(1, ""))), HasSubstr("action"));
}

TEST(LoaderTest, ManyErrorsAreAllReported) {
  const std::string text = AgreementText(
      "a1", Body(3, "  purposes: \"gossip\"")
                .replace(0, 0, "  requesters { org_id: \"ghost\" }\n"));
  const std::string e = Error(text);
  EXPECT_THAT(e, AllOf(HasSubstr("ghost"), HasSubstr("gossip")));
}

TEST(LoaderTest, KindMatchingNoPartyIsAWarning) {
  auto p = CompileOne(AgreementText(
      "a1",
      Body(0,
           "  requesters { kind: ORG_KIND_VOLUNTARY }\n  requesters { kind: "
           "ORG_KIND_HEALTH }")));
  ASSERT_TRUE(p.ok()) << p.status();
  const auto w = (*p)->Warnings(testing::InWindow());
  EXPECT_THAT(absl::StrJoin(w, "\n"),
              AllOf(HasSubstr("a.textproto:11:3"),
                    HasSubstr("kind HEALTH matches no party")));
}

TEST(LoaderTest, PartnershipErrors) {
  std::string p = kPartnership;
  if (p.back() != '\n') p += "\n";
  const int line = static_cast<int>(std::count(p.begin(), p.end(), '\n')) + 1;
  p += "purposes { id: \"support\" description: \"again\" }\n";
  auto set = PolicySet::Compile({"partnership.textproto", p}, {});
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(
      set.status().message(),
      AllOf(HasSubstr(absl::StrCat("partnership.textproto:", line, ":")),
            HasSubstr("\"support\"")));
}

TEST(LoaderTest, MissingFileIsNamed) {
  auto p = PolicySet::Load(testing::ExamplePartnership(),
                           {"/nonexistent/agreement.textproto"});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(),
              HasSubstr("/nonexistent/agreement.textproto"));
}

}  // namespace
}  // namespace accord::policy
