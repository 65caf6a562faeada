// Decisions: allow and every deny reason, kinds expansion, validity windows,
// deny-by-default field by field, no-consent clause variations, choice among
// several matching rules, and the proto forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/compiled.h"
#include "policy/policy.h"
#include "policy/test_util.h"

namespace accord::policy {
namespace {

using testing::AgreementText;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::InWindow;
using testing::kPartnership;
using testing::kSupportRule;

constexpr char kPoliceAgreement[] = R"pb(
  id: "b1"
  version: 2
  title: "Police and services"
  parties: [ "vol-a", "vol-b", "police", "council" ]
  valid_from { seconds: 1767225600 }
  valid_until { seconds: 1861920000 }
  review_by { seconds: 1814313600 }
  rules {
    id: "police-involvement"
    requesters { org_id: "police" }
    action: ACTION_QUERY
    holders { kind: ORG_KIND_VOLUNTARY }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    involvement_only: true
  }
  rules {
    id: "police-query"
    requesters { org_id: "police" }
    action: ACTION_QUERY
    holders { kind: ORG_KIND_VOLUNTARY }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    art9_condition: ART9_CONDITION_SCH1_SAFEGUARDING
    consent_required: true
    release { field: "given_name" transform: TRANSFORM_KEEP }
    release { field: "date_of_birth" transform: TRANSFORM_DATE_TO_AGE_BAND }
    release { field: "postcode" transform: TRANSFORM_POSTCODE_TO_DISTRICT }
    release { field: "disability" transform: TRANSFORM_DROP }
    release { category: DATA_CATEGORY_RISK transform: TRANSFORM_KEEP }
    no_consent {
      basis: NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM
      accepted_reasons: CONSENT_NOT_SOUGHT_REASON_CANNOT_REASONABLY_BE_OBTAINED
      record_whether_told: true
      require_justification: true
      approver_role: "duty-inspector"
      flag_for_review: true
    }
  }
  rules {
    id: "council-stats"
    requesters { org_id: "council" }
    action: ACTION_STATISTICS
    holders { kind: ORG_KIND_VOLUNTARY }
    purposes: "monitoring"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    release { category: DATA_CATEGORY_NEEDS transform: TRANSFORM_KEEP }
  }
  rules {
    id: "overlap-b"
    requesters { org_id: "vol-a" }
    action: ACTION_QUERY
    holders { org_id: "council" }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    consent_required: true
    release { field: "given_name" transform: TRANSFORM_KEEP }
    release { category: DATA_CATEGORY_RISK transform: TRANSFORM_KEEP }
  }
  rules {
    id: "overlap-a"
    requesters { org_id: "vol-a" }
    action: ACTION_QUERY
    holders { org_id: "council" }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    consent_required: true
    release { field: "given_name" transform: TRANSFORM_PSEUDONYMISE }
    release { field: "family_name" transform: TRANSFORM_KEEP }
  }
)pb";

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p =
        PolicySet::Compile({"partnership.textproto", kPartnership},
                           {{"a.textproto", AgreementText("a1", kSupportRule)},
                            {"b.textproto", kPoliceAgreement}});
    ASSERT_TRUE(p.ok()) << p.status();
    policy_ = *p;
  }

  static Request Req(absl::string_view requester, absl::string_view holder,
                     accord::v1::Action action, absl::string_view purpose) {
    Request q;
    q.requester_org = requester;
    q.holder_org = holder;
    q.action = action;
    q.purpose = purpose;
    q.at = InWindow();
    return q;
  }

  // A complete, valid no-consent assertion for "police-query".
  static NoConsentAssertion Assertion() {
    NoConsentAssertion a;
    a.basis = accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM;
    a.reason =
        accord::v1::CONSENT_NOT_SOUGHT_REASON_CANNOT_REASONABLY_BE_OBTAINED;
    a.has_justification = true;
    a.has_approver = true;
    a.approver_role = "duty-inspector";
    a.told = NoConsentAssertion::Told::kNotTold;
    return a;
  }

  std::shared_ptr<const PolicySet> policy_;
};

TEST_F(DecideTest, AllowsWithThePlanIntersectedWithTheAsk) {
  Request q = Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support");
  q.AskField("date_of_birth");
  q.AskField("family_name");  // not released by r1
  q.AskCategory(accord::v1::DATA_CATEGORY_NEEDS);
  const Decision d = policy_->Decide(q);
  ASSERT_TRUE(d.allowed()) << d.Explanation();
  EXPECT_EQ(d.agreement_id(), "a1");
  EXPECT_EQ(d.agreement_version(), 3u);
  EXPECT_EQ(d.rule_id(), "r1");
  EXPECT_EQ(d.consent, accord::v1::CONSENT_REQUIREMENT_REQUIRED);
  EXPECT_EQ(d.plan.size(), 2);
  EXPECT_EQ(d.TransformOf(ItemOfField("date_of_birth")),
            accord::v1::TRANSFORM_DATE_TO_YEAR);
  EXPECT_EQ(d.TransformOf(ItemOfCategory(accord::v1::DATA_CATEGORY_NEEDS)),
            accord::v1::TRANSFORM_KEEP);
  EXPECT_EQ(d.TransformOf(ItemOfField("family_name")),
            accord::v1::TRANSFORM_UNSPECIFIED);
  EXPECT_THAT(
      d.Explanation(),
      AllOf(HasSubstr("ALLOW"), HasSubstr("'r1'"),
            HasSubstr("withheld (not released by this rule): family_name")));
}

TEST_F(DecideTest, EmptyAskMeansEverythingTheRuleReleases) {
  const Decision d = policy_->Decide(
      Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support"));
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.plan.size(), 3);
}

TEST_F(DecideTest, DenyByDefaultFieldByField) {
  // Only given_name, date_of_birth and NEEDS are ever released by r1.
  for (const FieldSpec& f : AllFields()) {
    Request q = Req("vol-b", "vol-a", accord::v1::ACTION_QUERY, "support");
    q.AskField(f.name);
    const Decision d = policy_->Decide(q);
    const bool released = f.name == "given_name" || f.name == "date_of_birth";
    EXPECT_EQ(d.allowed(), released) << f.name;
    if (!released) {
      EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_NOTHING_RELEASABLE)
          << f.name;
    }
    EXPECT_EQ(d.plan.size(), released ? 1 : 0);
  }
  for (int c = 1; c <= 10; ++c) {
    Request q = Req("vol-b", "vol-a", accord::v1::ACTION_QUERY, "support");
    q.AskCategory(static_cast<accord::v1::DataCategory>(c));
    EXPECT_EQ(policy_->Decide(q).allowed(),
              c == accord::v1::DATA_CATEGORY_NEEDS)
        << c;
  }
  // A name outside the catalogue is never released, and asking only for it
  // is not "everything".
  Request q = Req("vol-b", "vol-a", accord::v1::ACTION_QUERY, "support");
  q.AskField("shoe_size");
  EXPECT_EQ(policy_->Decide(q).deny_reason,
            accord::v1::DENY_REASON_NOTHING_RELEASABLE);
}

TEST_F(DecideTest, DroppedFieldsAreNeverPlanned) {
  Request q = Req("police", "vol-a", accord::v1::ACTION_QUERY, "safeguarding");
  q.AskField("disability");
  EXPECT_EQ(policy_->Decide(q).deny_reason,
            accord::v1::DENY_REASON_NOTHING_RELEASABLE);
}

TEST_F(DecideTest, KindsExpandToPartiesOfThatKindOnly) {
  // vol-c is VOLUNTARY but not a party to a1 or b1.
  EXPECT_EQ(
      policy_
          ->Decide(Req("vol-c", "vol-a", accord::v1::ACTION_QUERY, "support"))
          .deny_reason,
      accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES);
  EXPECT_EQ(
      policy_
          ->Decide(Req("vol-a", "vol-c", accord::v1::ACTION_QUERY, "support"))
          .deny_reason,
      accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES);
  // police is a party but not VOLUNTARY.
  EXPECT_EQ(
      policy_
          ->Decide(Req("vol-a", "police", accord::v1::ACTION_QUERY, "support"))
          .deny_reason,
      accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES);
  EXPECT_TRUE(
      policy_
          ->Decide(Req("vol-b", "vol-a", accord::v1::ACTION_QUERY, "support"))
          .allowed());
}

TEST_F(DecideTest, DenyReasons) {
  Decision d = policy_->Decide(
      Req("stranger", "vol-a", accord::v1::ACTION_QUERY, "support"));
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_UNKNOWN_ORGANISATION);
  EXPECT_THAT(d.Explanation(), HasSubstr("requester is not an organisation"));

  d = policy_->Decide(
      Req("health", "vol-a", accord::v1::ACTION_QUERY, "support"));
  EXPECT_EQ(d.deny_reason,
            accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES);
  EXPECT_THAT(d.Explanation(), HasSubstr("'health'"));

  d = policy_->Decide(
      Req("vol-a", "vol-b", accord::v1::ACTION_REFERRAL, "support"));
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_ACTION_NOT_AGREED);
  EXPECT_THAT(d.Explanation(), HasSubstr("do not permit REFERRAL"));

  d = policy_->Decide(
      Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "safeguarding"));
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_PURPOSE_NOT_AGREED);
  EXPECT_THAT(d.Explanation(), AllOf(HasSubstr("permits purposes [support]"),
                                     HasSubstr("not 'safeguarding'"),
                                     HasSubstr("a.textproto:8")));
  EXPECT_EQ(d.rule_id(), "r1");

  d = policy_->Decide(
      Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "no-such-purpose"));
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_PURPOSE_NOT_AGREED);

  Request q = Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support");
  q.AskCategory(accord::v1::DATA_CATEGORY_HEALTH);
  d = policy_->Decide(q);
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_NOTHING_RELEASABLE);
  EXPECT_FALSE(d.allowed());
  EXPECT_TRUE(d.plan.empty());
}

TEST_F(DecideTest, InvolvementOnlyRules) {
  Request q = Req("police", "vol-a", accord::v1::ACTION_QUERY, "safeguarding");
  q.involvement_only = true;
  Decision d = policy_->Decide(q);
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.rule_id(), "police-involvement");
  EXPECT_EQ(d.consent, accord::v1::CONSENT_REQUIREMENT_NOT_REQUIRED);
  EXPECT_TRUE(d.plan.empty());
  EXPECT_TRUE(d.ToProto().involvement_only());

  // Content from a policy that only has the involvement rule is refused.
  auto only = PolicySet::Compile({"p", kPartnership},
                                 {{"i.textproto", R"pb(
                                     id: "i1"
                                     version: 1
                                     title: "t"
                                     parties: [ "police", "vol-a" ]
                                     valid_from { seconds: 1767225600 }
                                     valid_until { seconds: 1861920000 }
                                     rules {
                                       id: "inv"
                                       requesters { org_id: "police" }
                                       action: ACTION_QUERY
                                       holders { org_id: "vol-a" }
                                       purposes: "safeguarding"
                                       lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
                                       involvement_only: true
                                     }
                                   )pb"}});
  ASSERT_TRUE(only.ok()) << only.status();
  d = (*only)->Decide(
      Req("police", "vol-a", accord::v1::ACTION_QUERY, "safeguarding"));
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_INVOLVEMENT_ONLY);
  EXPECT_THAT(d.Explanation(), HasSubstr("only involvement"));
}

TEST_F(DecideTest, ValidityWindowPermitsNothingOutside) {
  for (absl::Time t :
       {testing::WindowStart() - absl::Seconds(1), testing::WindowEnd(),
        testing::WindowEnd() + absl::Hours(24 * 365)}) {
    Request q = Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support");
    q.at = t;
    const Decision d = policy_->Decide(q);
    EXPECT_FALSE(d.allowed());
    EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_AGREEMENT_NOT_IN_FORCE);
    EXPECT_THAT(d.Explanation(),
                HasSubstr("is in force from 2026-01-01T00:00:00Z"));
    EXPECT_TRUE(
        policy_
            ->CandidateHolders("vol-a", accord::v1::ACTION_QUERY, "support", t)
            .empty());
  }
  Request q = Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support");
  q.at = testing::WindowStart();
  EXPECT_TRUE(policy_->Decide(q).allowed());
  q.at = testing::WindowEnd() - absl::Seconds(1);
  EXPECT_TRUE(policy_->Decide(q).allowed());
}

TEST_F(DecideTest, NoConsentClauseMet) {
  const NoConsentAssertion a = Assertion();
  Request q = Req("police", "vol-b", accord::v1::ACTION_QUERY, "safeguarding");
  q.no_consent = &a;
  const Decision d = policy_->Decide(q);
  ASSERT_TRUE(d.allowed()) << d.Explanation();
  EXPECT_EQ(d.rule_id(), "police-query");
  EXPECT_EQ(d.consent, accord::v1::CONSENT_REQUIREMENT_SET_ASIDE);
  EXPECT_TRUE(d.flag_for_review);
  const auto proto = d.ToProto();
  EXPECT_EQ(proto.lawful_basis(), accord::v1::LAWFUL_BASIS_PUBLIC_TASK);
  EXPECT_EQ(proto.art9_condition(),
            accord::v1::ART9_CONDITION_SCH1_SAFEGUARDING);
  EXPECT_TRUE(proto.flag_for_review());
  EXPECT_THAT(proto.explanation(), HasSubstr("set aside"));
}

TEST_F(DecideTest, NoConsentClauseVariations) {
  struct Case {
    const char* name;
    void (*mutate)(NoConsentAssertion*);
    accord::v1::DenyReason want;
    const char* says;
  };
  const Case cases[] = {
      {"basis",
       [](NoConsentAssertion* a) {
         a->basis = accord::v1::NO_CONSENT_BASIS_VITAL_INTERESTS;
       },
       accord::v1::DENY_REASON_NO_CONSENT_BASIS_MISMATCH,
       "NO_CONSENT_BASIS_VITAL_INTERESTS"},
      {"reason",
       [](NoConsentAssertion* a) {
         a->reason = accord::v1::CONSENT_NOT_SOUGHT_REASON_CANNOT_BE_GIVEN;
       },
       accord::v1::DENY_REASON_NO_CONSENT_BASIS_MISMATCH,
       "CONSENT_NOT_SOUGHT_REASON_CANNOT_BE_GIVEN"},
      {"justification",
       [](NoConsentAssertion* a) { a->has_justification = false; },
       accord::v1::DENY_REASON_JUSTIFICATION_MISSING, "justification"},
      {"approver", [](NoConsentAssertion* a) { a->has_approver = false; },
       accord::v1::DENY_REASON_APPROVER_MISSING, "no approver was given"},
      {"role", [](NoConsentAssertion* a) { a->approver_role = "sergeant"; },
       accord::v1::DENY_REASON_APPROVER_MISSING, "does not hold that role"},
      {"told",
       [](NoConsentAssertion* a) {
         a->told = NoConsentAssertion::Told::kNotRecorded;
       },
       accord::v1::DENY_REASON_SUBJECT_TOLD_NOT_RECORDED, "was told"},
  };
  for (const Case& c : cases) {
    NoConsentAssertion a = Assertion();
    c.mutate(&a);
    Request q =
        Req("police", "vol-b", accord::v1::ACTION_QUERY, "safeguarding");
    q.no_consent = &a;
    const Decision d = policy_->Decide(q);
    EXPECT_FALSE(d.allowed()) << c.name;
    EXPECT_EQ(d.deny_reason, c.want) << c.name;
    EXPECT_THAT(d.Explanation(), HasSubstr(c.says)) << c.name;
    EXPECT_EQ(d.rule_id(), "police-query") << c.name;
  }
  // The told flag is also satisfied by "told".
  NoConsentAssertion told = Assertion();
  told.told = NoConsentAssertion::Told::kTold;
  Request q = Req("police", "vol-b", accord::v1::ACTION_QUERY, "safeguarding");
  q.no_consent = &told;
  EXPECT_TRUE(policy_->Decide(q).allowed());
}

TEST_F(DecideTest, NoConsentWhereTheRuleHasNoClause) {
  const NoConsentAssertion a = Assertion();
  Request q = Req("vol-a", "vol-b", accord::v1::ACTION_QUERY, "support");
  q.no_consent = &a;
  const Decision d = policy_->Decide(q);
  EXPECT_EQ(d.deny_reason, accord::v1::DENY_REASON_NO_CONSENT_CLAUSE_ABSENT);
  // A rule that does not rest on consent ignores the assertion.
  Request s =
      Req("council", "vol-a", accord::v1::ACTION_STATISTICS, "monitoring");
  s.no_consent = &a;
  const Decision stats = policy_->Decide(s);
  ASSERT_TRUE(stats.allowed());
  EXPECT_EQ(stats.consent, accord::v1::CONSENT_REQUIREMENT_NOT_REQUIRED);
  EXPECT_FALSE(stats.flag_for_review);
}

TEST_F(DecideTest, NoConsentAssertionFromProto) {
  accord::v1::NoConsentAssertion p;
  p.set_basis(accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM);
  p.set_justification("   ");
  p.set_subject_told(false);
  p.mutable_approver()->set_role("duty-inspector");  // no user
  NoConsentAssertion a = NoConsentAssertion::FromProto(p);
  EXPECT_FALSE(a.has_justification);
  EXPECT_FALSE(a.has_approver);
  EXPECT_EQ(a.told, NoConsentAssertion::Told::kNotRecorded);
  p.set_not_told_reason("would increase the risk");
  p.mutable_approver()->set_user_id("insp-1");
  a = NoConsentAssertion::FromProto(p);
  EXPECT_EQ(a.told, NoConsentAssertion::Told::kNotTold);
  EXPECT_TRUE(a.has_approver);
}

TEST_F(DecideTest, SeveralMatchingRulesArePickedDeterministically) {
  Request q = Req("vol-a", "council", accord::v1::ACTION_QUERY, "safeguarding");
  q.AskField("given_name");
  Decision d = policy_->Decide(q);
  ASSERT_TRUE(d.allowed());
  EXPECT_EQ(d.rule_id(), "overlap-a");  // tie: by rule id
  EXPECT_EQ(d.allowing_rules, 2);
  EXPECT_THAT(d.Explanation(), HasSubstr("chosen from 2 matching rules"));
  q.AskCategory(accord::v1::DATA_CATEGORY_RISK);
  d = policy_->Decide(q);
  EXPECT_EQ(d.rule_id(), "overlap-b");  // releases more of the ask
  // Involvement requests prefer the involvement rule over a fuller one.
  Request inv =
      Req("police", "vol-a", accord::v1::ACTION_QUERY, "safeguarding");
  inv.involvement_only = true;
  EXPECT_EQ(policy_->Decide(inv).rule_id(), "police-involvement");
}

TEST_F(DecideTest, ProtoRoundTripAndSameDecision) {
  accord::v1::DecisionRequest r;
  r.set_requester_org("police");
  r.set_holder_org("vol-a");
  r.set_action(accord::v1::ACTION_QUERY);
  r.set_purpose("safeguarding");
  r.add_fields("postcode");
  r.add_fields("date_of_birth");
  r.add_categories(accord::v1::DATA_CATEGORY_RISK);
  const auto d = policy_->DecideProto(r, InWindow());
  ASSERT_EQ(d.verdict(), accord::v1::VERDICT_ALLOW) << d.explanation();
  EXPECT_EQ(d.agreement_id(), "b1");
  EXPECT_EQ(d.agreement_version(), 2u);
  EXPECT_EQ(d.rule_id(), "police-query");
  EXPECT_EQ(d.consent(), accord::v1::CONSENT_REQUIREMENT_REQUIRED);
  ASSERT_EQ(d.plan().releases_size(), 3);
  EXPECT_EQ(d.plan().releases(0).field(), "date_of_birth");
  EXPECT_EQ(d.plan().releases(0).transform(),
            accord::v1::TRANSFORM_DATE_TO_AGE_BAND);
  EXPECT_EQ(d.plan().releases(1).field(), "postcode");
  EXPECT_EQ(d.plan().releases(2).category(), accord::v1::DATA_CATEGORY_RISK);

  accord::v1::Decision other = d;
  std::reverse(other.mutable_plan()->mutable_releases()->begin(),
               other.mutable_plan()->mutable_releases()->end());
  other.set_explanation("different words");
  EXPECT_TRUE(SameDecision(d, other));
  other.mutable_plan()->mutable_releases(2)->set_transform(
      accord::v1::TRANSFORM_KEEP);
  EXPECT_FALSE(SameDecision(d, other));
  other = d;
  other.set_rule_id("police-involvement");
  EXPECT_FALSE(SameDecision(d, other));
  other = d;
  other.set_agreement_version(3);
  EXPECT_FALSE(SameDecision(d, other));
  other = d;
  other.set_consent(accord::v1::CONSENT_REQUIREMENT_SET_ASIDE);
  EXPECT_FALSE(SameDecision(d, other));
  other = d;
  other.mutable_plan()->add_releases()->set_field("phone");
  EXPECT_FALSE(SameDecision(d, other));

  // A deny carries its reason and no plan.
  r.set_purpose("monitoring");
  const auto deny = policy_->DecideProto(r, InWindow());
  EXPECT_EQ(deny.verdict(), accord::v1::VERDICT_DENY);
  EXPECT_EQ(deny.deny_reason(), accord::v1::DENY_REASON_PURPOSE_NOT_AGREED);
  EXPECT_EQ(deny.plan().releases_size(), 0);
}

TEST_F(DecideTest, CandidateHolders) {
  EXPECT_THAT(policy_->CandidateHolders("police", accord::v1::ACTION_QUERY,
                                        "safeguarding", InWindow()),
              ElementsAre("vol-a", "vol-b"));
  EXPECT_THAT(policy_->CandidateHolders("vol-a", accord::v1::ACTION_QUERY,
                                        "support", InWindow()),
              ElementsAre("vol-b"));
  EXPECT_TRUE(policy_
                  ->CandidateHolders("police", accord::v1::ACTION_QUERY,
                                     "support", InWindow())
                  .empty());
  EXPECT_TRUE(policy_
                  ->CandidateHolders("nobody", accord::v1::ACTION_QUERY,
                                     "support", InWindow())
                  .empty());
}

TEST_F(DecideTest, RegisterAndWarnings) {
  auto reg = policy_->Register(InWindow(), false);
  ASSERT_EQ(reg.size(), 2u);
  EXPECT_EQ(reg[0].id(), "a1");
  EXPECT_TRUE(reg[0].in_force());
  EXPECT_EQ(reg[1].rule_count(), 5u);
  EXPECT_TRUE(policy_->Register(testing::WindowEnd(), false).empty());
  EXPECT_EQ(policy_->Register(testing::WindowEnd(), true).size(), 2u);

  const std::string w = absl::StrJoin(policy_->Warnings(InWindow()), "\n");
  EXPECT_THAT(
      w, AllOf(HasSubstr("rule 'overlap-a'"), HasSubstr("rule 'overlap-b'"),
               HasSubstr("conflicting field plans"),
               HasSubstr("given_name (PSEUDONYMISE vs KEEP)")));
  const std::string later = absl::StrJoin(
      policy_->Warnings(absl::FromUnixSeconds(1814313600 + 10)), "\n");
  EXPECT_THAT(later, HasSubstr("past its review date"));
  const std::string expired =
      absl::StrJoin(policy_->Warnings(testing::WindowEnd()), "\n");
  EXPECT_THAT(expired,
              AllOf(HasSubstr("a.textproto:1:1"), HasSubstr("expired")));
}

TEST_F(DecideTest, ExplainListsEveryRuleConsidered) {
  Request q = Req("police", "vol-a", accord::v1::ACTION_QUERY, "safeguarding");
  q.AskCategory(accord::v1::DATA_CATEGORY_CASE_SUMMARY);
  const std::string e = policy_->Explain(q);
  EXPECT_THAT(
      e,
      AllOf(HasSubstr("Agreement 'a1'"), HasSubstr("Agreement 'b1'"),
            HasSubstr("rule 'police-involvement'"),
            HasSubstr("INVOLVEMENT_ONLY"), HasSubstr("rule 'police-query'"),
            HasSubstr("NOTHING_RELEASABLE"), HasSubstr("rule 'council-stats'"),
            HasSubstr("requesters do not include 'police'"),
            HasSubstr("Decision: DENY")));
}

}  // namespace
}  // namespace accord::policy
