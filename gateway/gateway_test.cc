// The query orchestration with scripted holders and an in-memory audit log:
// who is asked, what is released, when, and what is recorded.
#include "gateway/gateway.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/test_fakes.h"

namespace accord::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::ExamplePartnership;
using testing::FakeHolderClients;
using testing::Result;

constexpr char kZoe[] =
    "6d1f0c2e9a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";

accord::v1::QueryRequest RiskQuery(const std::string& id) {
  accord::v1::QueryRequest q;
  q.set_request_id(id);
  q.set_purpose("safeguarding");
  q.set_mode(accord::v1::QUERY_MODE_RECORDS);
  auto* t = q.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value(kZoe);
  q.add_holders("rape-crisis");
  q.add_holders("refuge");
  return q;
}

accord::v1::DisclosedRecord Record(accord::v1::DataCategory category) {
  accord::v1::DisclosedRecord r;
  r.set_ref("psd:0123456789abcdef0123456789abcdef");
  r.set_category(category);
  r.set_recorded("2026-05-01");
  r.set_text("record text");
  return r;
}

// What a holder keeping to rule police-risk-query returns.
accord::v1::DiscloseResponse Minimised() {
  accord::v1::DiscloseResponse a;
  a.set_status(accord::v1::HOLDER_STATUS_ANSWERED);
  (*a.mutable_fields())["given_name"] = "Zoe";
  (*a.mutable_fields())["date_of_birth"] = "35-39";
  (*a.mutable_fields())["postcode"] = "LS6";
  *a.add_records() = Record(accord::v1::DATA_CATEGORY_RISK);
  return a;
}

struct QueryFixture : ::testing::Test {
  QueryFixture()
      : holders({"rape-crisis", "refuge", "womens-centre", "law-centre",
                 "employment", "childrens-services"}),
        gateway(p.pipeline.get(), p.policy.get(), &holders, {}) {}

  absl::StatusOr<accord::v1::QueryResponse> Ask(
      const accord::v1::QueryRequest& q, Caller caller) {
    Result<accord::v1::QueryResponse> result;
    gateway.Query(std::move(caller), q, result.Callback());
    return result.Get();
  }
  absl::StatusOr<accord::v1::QueryResponse> Ask(
      const accord::v1::QueryRequest& q) {
    return Ask(q, p.Org("police"));
  }
  const accord::v1::HolderAnswer* AnswerOf(
      const accord::v1::QueryResponse& r, const std::string& holder) {
    for (const auto& a : r.answers())
      if (a.holder() == holder) return &a;
    return nullptr;
  }

  ExamplePartnership p;
  FakeHolderClients holders;
  Gateway gateway;
};

TEST_F(QueryFixture, EachPermittedHolderIsAskedUnderItsOwnDecision) {
  holders.Answer("rape-crisis", Minimised());
  holders.Answer("refuge", Minimised());
  auto r = Ask(RiskQuery("q-1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id(), "q-1");
  ASSERT_EQ(r->answers_size(), 2);
  for (const char* h : {"rape-crisis", "refuge"}) {
    SCOPED_TRACE(h);
    auto reqs = holders.requests(h);
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].request_id(), "q-1");
    EXPECT_EQ(reqs[0].requester_org(), "police");
    EXPECT_EQ(reqs[0].decision().rule_id(), "police-risk-query");
    EXPECT_EQ(reqs[0].actor().user_id(), "pc-4471");
    EXPECT_EQ(AnswerOf(*r, h)->status(), accord::v1::HOLDER_STATUS_ANSWERED);
    EXPECT_EQ(AnswerOf(*r, h)->fields().at("date_of_birth"), "35-39");
  }
  auto entries = p.log.EntriesOf("Query");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(r->audit_seq(), entries[0].seq());
  for (const auto& e : entries) {
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_ALLOW);
    EXPECT_EQ(e.rule_id(), "police-risk-query");
    EXPECT_THAT(e.fields_released(),
                ElementsAre("date_of_birth", "given_name", "postcode",
                            "record:DATA_CATEGORY_RISK"));
    EXPECT_EQ(e.record_count(), 1u);
  }
}

TEST_F(QueryFixture, AHolderTimingOutGivesAPartialAnswer) {
  holders.Answer("rape-crisis", Minimised());
  holders.SetScript("refuge", [](const auto&, auto done) {
    done(absl::DeadlineExceededError(
             "the holder's agent did not answer in time"),
         {});
  });
  auto r = Ask(RiskQuery("q-timeout"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(AnswerOf(*r, "rape-crisis")->status(),
            accord::v1::HOLDER_STATUS_ANSWERED);
  EXPECT_EQ(AnswerOf(*r, "refuge")->status(),
            accord::v1::HOLDER_STATUS_TIMED_OUT);
  EXPECT_EQ(AnswerOf(*r, "refuge")->detail(),
            "the holder's agent did not answer in time");
  EXPECT_EQ(p.log.EntriesOf("Query").size(), 2u);
}

TEST_F(QueryFixture, AnUnreachableHolderIsReportedWithoutItsAddress) {
  holders.Answer("rape-crisis", Minimised());
  holders.SetScript("refuge", [](const auto&, auto done) {
    done(absl::UnavailableError("the holder's agent is unreachable"), {});
  });
  auto r = Ask(RiskQuery("q-down"));
  ASSERT_TRUE(r.ok());
  const auto* refuge = AnswerOf(*r, "refuge");
  EXPECT_EQ(refuge->status(), accord::v1::HOLDER_STATUS_UNAVAILABLE);
  EXPECT_EQ(refuge->detail(), "the holder's agent is unreachable");
}

TEST_F(QueryFixture, HoldersAreGivenNoMoreThanTheCallersOwnDeadlineAllows) {
  holders.Answer("rape-crisis", Minimised());
  holders.Answer("refuge", Minimised());
  Caller c = p.Org("police");
  c.deadline = p.clock.Now() + absl::Seconds(1);
  ASSERT_TRUE(Ask(RiskQuery("q-deadline"), c).ok());
  for (const char* h : {"rape-crisis", "refuge"}) {
    ASSERT_EQ(holders.deadlines(h).size(), 1u);
    EXPECT_LE(holders.deadlines(h)[0], absl::Milliseconds(900));
  }
}

TEST_F(QueryFixture, NothingIsReleasedBeforeEveryDecisionIsDurable) {
  holders.Answer("rape-crisis", Minimised());
  holders.Answer("refuge", Minimised());
  p.log.Hold();
  Result<accord::v1::QueryResponse> result;
  const auto q = RiskQuery("q-durable");
  gateway.Query(p.Org("police"), q, result.Callback());
  EXPECT_FALSE(result.ready());
  EXPECT_EQ(p.log.held(), 2u);
  p.log.Commit();
  EXPECT_TRUE(result.Get().ok());
}

TEST_F(QueryFixture, AnAuditFailureReleasesNothing) {
  holders.Answer("rape-crisis", Minimised());
  holders.Answer("refuge", Minimised());
  p.log.FailNext(1);
  auto r = Ask(RiskQuery("q-full-disk"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("nothing was released"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("Zoe")));
}

TEST_F(QueryFixture, WhatAHolderReturnsOutsideThePlanNeverReachesTheRequester) {
  // A lying or misconfigured holder answers a risk query with everything.
  accord::v1::DiscloseResponse over = Minimised();
  (*over.mutable_fields())["date_of_birth"] = "1988-02-29";  // not a band
  (*over.mutable_fields())["postcode"] = "LS6 2AB";          // not a district
  (*over.mutable_fields())["phone"] = "07700 900123";
  (*over.mutable_fields())["ethnicity"] = "White British";
  (*over.mutable_fields())["nhs_number"] = "9434765919";
  *over.add_records() = Record(accord::v1::DATA_CATEGORY_SEX_LIFE);
  auto* bad_ref = over.add_records();
  *bad_ref = Record(accord::v1::DATA_CATEGORY_RISK);
  bad_ref->set_ref("RC-2041/7");  // the holder's own record id, not a pseudonym
  holders.Answer("refuge", over);
  holders.Answer("rape-crisis", Minimised());
  auto r = Ask(RiskQuery("q-over"));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto* refuge = AnswerOf(*r, "refuge");
  EXPECT_TRUE(refuge->over_shared());
  std::vector<std::string> fields;
  for (const auto& [k, v] : refuge->fields()) fields.push_back(k);
  EXPECT_THAT(fields, UnorderedElementsAre("given_name"));
  ASSERT_EQ(refuge->records_size(), 1);
  EXPECT_EQ(refuge->records(0).category(), accord::v1::DATA_CATEGORY_RISK);
  std::vector<std::string> withheld;
  for (const auto& w : refuge->withheld()) {
    withheld.push_back(w.what());
    EXPECT_THAT(w.reason(), HasSubstr("outside the agreed plan"));
  }
  EXPECT_THAT(withheld, UnorderedElementsAre(
                            "date_of_birth", "postcode", "phone", "ethnicity",
                            "nhs_number", "record:DATA_CATEGORY_SEX_LIFE",
                            "record:DATA_CATEGORY_RISK"));
  EXPECT_FALSE(AnswerOf(*r, "rape-crisis")->over_shared());
  EXPECT_EQ(gateway.over_shared_answers(), 1u);

  bool audited = false;
  for (const auto& e : p.log.EntriesOf("Query")) {
    if (e.holder() != "refuge") continue;
    audited = true;
    EXPECT_THAT(e.over_shared(), UnorderedElementsAre(
                                     "date_of_birth", "postcode", "phone",
                                     "ethnicity", "nhs_number",
                                     "record:DATA_CATEGORY_SEX_LIFE",
                                     "record:DATA_CATEGORY_RISK"));
    EXPECT_THAT(e.fields_released(),
                ElementsAre("given_name", "record:DATA_CATEGORY_RISK"));
    EXPECT_THAT(e.detail(), HasSubstr("over-shared"));
  }
  EXPECT_TRUE(audited);
}

TEST_F(QueryFixture, AnInvolvementAnswerCarriesOnlyThePartnershipsContacts) {
  accord::v1::DiscloseResponse a;
  a.set_status(accord::v1::HOLDER_STATUS_ANSWERED);
  auto* good = a.add_involvement();
  good->set_service("Independent Sexual Violence Advisers");
  good->set_contact_name("Carys Lindqvist");
  good->set_contact_role("ISVA manager");
  good->set_contact_phone("01632 960201");
  good->set_contact_email("isva@rape-crisis.northdale.example");
  auto* smuggled = a.add_involvement();
  *smuggled = *good;
  smuggled->set_contact_phone("her mobile 07700 900123");
  (*a.mutable_fields())["given_name"] = "Zoe";
  holders.Answer("rape-crisis", a);
  auto q = RiskQuery("q-involvement");
  q.clear_holders();
  q.add_holders("rape-crisis");
  q.set_mode(accord::v1::QUERY_MODE_INVOLVEMENT);
  auto r = Ask(q);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto* rc = AnswerOf(*r, "rape-crisis");
  ASSERT_EQ(rc->involvement_size(), 1);
  EXPECT_EQ(rc->involvement(0).contact_phone(), "01632 960201");
  EXPECT_EQ(rc->fields_size(), 0);
  EXPECT_TRUE(rc->over_shared());
}

TEST_F(QueryFixture, ContentWithANonAnswerIsDropped) {
  accord::v1::DiscloseResponse a = Minimised();
  a.set_status(accord::v1::HOLDER_STATUS_NO_MATCH);
  holders.Answer("refuge", a);
  holders.Answer("rape-crisis", Minimised());
  auto r = Ask(RiskQuery("q-nomatch"));
  ASSERT_TRUE(r.ok());
  const auto* refuge = AnswerOf(*r, "refuge");
  EXPECT_EQ(refuge->status(), accord::v1::HOLDER_STATUS_NO_MATCH);
  EXPECT_EQ(refuge->fields_size(), 0);
  EXPECT_EQ(refuge->records_size(), 0);
  EXPECT_TRUE(refuge->over_shared());
}

TEST_F(QueryFixture, AnUnknownFieldNameIsRefusedListingTheFields) {
  auto q = RiskQuery("q-dob");
  q.add_fields("dob");
  auto r = Ask(q);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("fields[0]: 'dob'"));
  EXPECT_THAT(r.status().message(), HasSubstr("date_of_birth"));
  EXPECT_TRUE(holders.requests("refuge").empty());
  auto entries = p.log.EntriesOf("Query");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].request_id(), "q-dob");
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_DENY);
}

TEST_F(QueryFixture, EveryRefusalIsAuditedOnce) {
  struct Case {
    std::string name;
    std::function<void(accord::v1::QueryRequest*)> spoil;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"purpose", [](auto* q) { q->set_purpose("gossip"); },
       absl::StatusCode::kInvalidArgument},
      {"holder", [](auto* q) { q->add_holders("no-such-org"); },
       absl::StatusCode::kInvalidArgument},
      {"token", [](auto* q) { q->mutable_subjects(0)->set_value("zz"); },
       absl::StatusCode::kInvalidArgument},
      {"no-agreement",
       [](auto* q) { q->set_purpose("referral"); },
       absl::StatusCode::kPermissionDenied},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const size_t before = p.log.entries().size();
    auto q = RiskQuery("q-" + c.name);
    c.spoil(&q);
    auto r = Ask(q);
    EXPECT_EQ(r.status().code(), c.code) << r.status();
    auto entries = p.log.entries();
    ASSERT_EQ(entries.size(), before + 1);
    EXPECT_EQ(entries.back().decision(), accord::v1::AUDIT_DECISION_DENY);
    EXPECT_EQ(entries.back().request_id(), "q-" + c.name);
  }
  EXPECT_TRUE(holders.requests("refuge").empty());
}

TEST_F(QueryFixture, AQueryFromANonOrganisationIsRefusedBeforeAnyHolder) {
  auto r = Ask(RiskQuery("q-auditor"), p.As(PrincipalKind::kAuditor, "dpo"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(holders.requests("refuge").empty());
  auto entries = p.log.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].request_id(), "q-auditor");
}

}  // namespace
}  // namespace accord::gateway
