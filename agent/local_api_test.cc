// The local API's logic (what the partner's own systems call): the text it
// accepts, the consent terms it records, and one local id per person. Real
// SQLite store in a temporary directory.

#include "agent/local_api.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {

using testing::AgentFixture;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

class LocalApiTest : public ::testing::Test {
 protected:
  LocalApiTest() : f_("local_api") {}

  static accord::v1::UpsertSubjectRequest Person(
      const std::string& local_id, const std::string& given = "Zoë",
      const std::string& family = "Ashworth-Hale",
      const std::string& dob = "1991-05-14", const std::string& nhs = "") {
    accord::v1::UpsertSubjectRequest r;
    r.mutable_subject()->set_local_id(local_id);
    auto& fields = *r.mutable_subject()->mutable_fields();
    fields["given_name"] = given;
    fields["family_name"] = family;
    fields["date_of_birth"] = dob;
    if (!nhs.empty()) fields["nhs_number"] = nhs;
    return r;
  }

  accord::v1::RecordConsentRequest GoodConsent(const std::string& subject) {
    accord::v1::RecordConsentRequest r;
    auto* c = r.mutable_consent();
    c->set_subject_local_id(subject);
    c->add_granted_to_orgs("vol-b");
    c->add_purposes("support");
    c->add_categories(accord::v1::DATA_CATEGORY_NEEDS);
    *c->mutable_given_at() = ToProtoTime(f_.clock.Now() - absl::Hours(1));
    c->set_method(accord::v1::CONSENT_METHOD_WRITTEN);
    c->set_recorded_by("ISVA Isla Vance");
    return r;
  }

  accord::v1::UpsertRecordRequest Record(const std::string& id,
                                         const std::string& subject,
                                         const std::string& text) {
    accord::v1::UpsertRecordRequest r;
    r.mutable_record()->set_local_id(id);
    r.mutable_record()->set_subject_local_id(subject);
    r.mutable_record()->set_category(accord::v1::DATA_CATEGORY_NEEDS);
    r.mutable_record()->set_provenance(accord::v1::PROVENANCE_FACT);
    r.mutable_record()->set_text(text);
    return r;
  }

  AgentFixture f_;
};

// ---------------------------------------------------------------------------
// Text

TEST_F(LocalApiTest, TextIsCheckedOnEveryCall) {
  // Free text keeps its line breaks and tabs.
  ASSERT_TRUE(f_.local->UpsertSubject(Person("S-1")).ok());
  ASSERT_TRUE(
      f_.local->UpsertRecord(Record("R-1", "S-1", "Line one\n\tLine two\r\n"))
          .ok());

  struct Case {
    std::string name;
    absl::Status status;
    std::string field;
  };
  auto tabbed = Person("S-2", "Zo\te");
  auto broken_id = Person("S-3\n");
  auto address = Person("S-4");
  (*address.mutable_subject()->mutable_fields())["address"] =
      "1 High St\nLeeds\x1b[2J";
  auto engagement = accord::v1::RecordEngagementRequest();
  engagement.mutable_engagement()->set_subject_local_id("S-1");
  engagement.mutable_engagement()->set_service("isva");
  *engagement.mutable_engagement()->mutable_started_at() =
      ToProtoTime(f_.clock.Now());
  engagement.mutable_engagement()->set_worker_name("Isla\nVance");
  auto consent = GoodConsent("S-1");
  consent.mutable_consent()->set_recorded_by("Isla \xc2\x85Vance");  // NEL
  accord::v1::WithdrawConsentRequest withdraw;
  withdraw.set_consent_id("C-1");
  withdraw.set_recorded_by("Isla\tVance");
  const std::vector<Case> cases = {
      {"tab in a name", f_.local->UpsertSubject(tabbed).status(),
       "field subject.fields.given_name contains a control character"},
      {"line break in a local id", f_.local->UpsertSubject(broken_id).status(),
       "field subject.local_id contains a control character"},
      {"escape in an address", f_.local->UpsertSubject(address).status(),
       "field subject.fields.address contains a control character"},
      {"carriage return alone",
       f_.local->UpsertRecord(Record("R-2", "S-1", "safe\rEVIL")).status(),
       "field record.text contains a control character"},
      {"C1 control character",
       f_.local
           ->UpsertRecord(Record("R-3", "S-1",
                                 "a\xc2\x9b"
                                 "2Jb"))
           .status(),
       "field record.text contains a control character"},
      {"line break in a worker's name",
       f_.local->RecordEngagement(engagement).status(),
       "field engagement.worker_name contains a control character"},
      {"NEL in who recorded a consent",
       f_.local->RecordConsent(consent).status(),
       "field consent.recorded_by contains a control character"},
      {"tab in who withdrew a consent",
       f_.local->WithdrawConsent(withdraw).status(),
       "field recorded_by contains a control character"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(c.status.message()), StartsWith(c.field)) << c.name;
  }
  // Nothing refused was stored.
  EXPECT_FALSE(f_.store->TokensOf("S-2").ok());
  EXPECT_FALSE(f_.store->TokensOf("S-4").ok());
  auto tokens = f_.store->TokensOf("S-1");
  ASSERT_TRUE(tokens.ok());
  auto ids = f_.store->FindByToken((*tokens)[0]);
  ASSERT_TRUE(ids.ok());
  auto view = f_.store->LoadSubject((*ids)[0], true);
  ASSERT_TRUE(view.ok());
  ASSERT_THAT(view->records, SizeIs(1));
  EXPECT_EQ(view->records[0].text(), "Line one\n\tLine two\r\n");
  EXPECT_THAT(*f_.store->EngagementsOf((*ids)[0]), SizeIs(0));
  EXPECT_THAT(*f_.store->Consents("S-1"), SizeIs(0));
}

// ---------------------------------------------------------------------------
// Consent terms

TEST_F(LocalApiTest, RecordConsentRefusesTermsThatCouldNeverApply) {
  ASSERT_TRUE(f_.local->UpsertSubject(Person("S-1")).ok());
  ASSERT_TRUE(f_.local->RecordConsent(GoodConsent("S-1")).ok());

  auto misspelt_org = GoodConsent("S-1");
  misspelt_org.mutable_consent()->add_granted_to_orgs("vol-bb");
  auto s = f_.local->RecordConsent(misspelt_org).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field consent.granted_to_orgs[1]: names an "
                         "organisation that is not in the partnership"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean 'vol-b'?"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("valid: vol-a, vol-b, vol-c, police"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("vol-bb")));

  auto misspelt_purpose = GoodConsent("S-1");
  misspelt_purpose.mutable_consent()->set_purposes(0, "suport");
  s = f_.local->RecordConsent(misspelt_purpose).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field consent.purposes[0]: names a purpose that is "
                         "not one of the partnership's"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean 'support'?"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("valid: support, safeguarding"));

  // Nothing close: the valid values, no guess.
  auto unknown = GoodConsent("S-1");
  unknown.mutable_consent()->set_purposes(0, "marketing-campaigns");
  s = f_.local->RecordConsent(unknown).status();
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("did you mean")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("valid: support"));

  auto no_recipient = GoodConsent("S-1");
  no_recipient.mutable_consent()->clear_granted_to_orgs();
  s = f_.local->RecordConsent(no_recipient).status();
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field consent.granted_to_orgs: a consent must name "
                         "at least one organisation"));

  auto backwards = GoodConsent("S-1");
  *backwards.mutable_consent()->mutable_expires_at() =
      ToProtoTime(f_.clock.Now() - absl::Hours(2));
  s = f_.local->RecordConsent(backwards).status();
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field consent.expires_at: must be after"));

  // Only the good consent is held.
  auto held = f_.store->Consents("S-1");
  ASSERT_TRUE(held.ok());
  EXPECT_THAT(*held, SizeIs(1));
}

// ---------------------------------------------------------------------------
// The monitoring dataset

// Engagements as an AgentDataset gives them to `accordctl agent load`, which
// records each through RecordEngagement.
std::vector<accord::v1::RecordEngagementRequest> DatasetEngagements(
    const std::string& text) {
  accord::v1::AgentDataset dataset;
  EXPECT_TRUE(ParseTextProto(text, "dataset.textproto", &dataset).ok());
  std::vector<accord::v1::RecordEngagementRequest> out;
  for (const auto& e : dataset.engagements()) {
    out.emplace_back();
    *out.back().mutable_engagement() = e;
  }
  return out;
}

TEST_F(LocalApiTest, RecordEngagementChecksTheMonitoringDataset) {
  ASSERT_TRUE(f_.local->UpsertSubject(Person("S-1")).ok());
  const auto requests = DatasetEngagements(R"pb(
    engagements {
      subject_local_id: "S-1"
      service: "isva"
      started_at { seconds: 1768003200 }
      referral_source: REFERRAL_SOURCE_HEALTH
      monitoring { ethnicity: ETHNICITY_BLACK_CARIBBEAN sex: SEX_FEMALE }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_BEFORE
        score: 30
        measured_at { seconds: 1768003200 }
      }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_AFTER
        score: 71
      }
    }
    engagements {
      subject_local_id: "S-1"
      service: "isva"
      started_at { seconds: 1768003200 }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_BEFORE
        score: 30
        measured_at { seconds: 1768003200 }
      }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_AFTER
        score: 45
        measured_at { seconds: 1767916800 }
      }
    }
    engagements {
      subject_local_id: "S-1"
      service: "isva"
      started_at { seconds: 1768003200 }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_SWEMWBS
        stage: OUTCOME_STAGE_BEFORE
        score: 20
      }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_SWEMWBS
        stage: OUTCOME_STAGE_BEFORE
        score: 21
      }
    }
    engagements {
      subject_local_id: "S-1"
      service: "isva"
      started_at { seconds: 1768003200 }
      referral_source: REFERRAL_SOURCE_HEALTH
      monitoring { ethnicity: ETHNICITY_BLACK_CARIBBEAN sex: SEX_FEMALE }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_BEFORE
        score: 30
        measured_at { seconds: 1768003200 }
      }
      outcomes {
        instrument: OUTCOME_INSTRUMENT_WEMWBS
        stage: OUTCOME_STAGE_AFTER
        score: 52.5
        measured_at { seconds: 1775001600 }
      }
    }
  )pb");
  ASSERT_THAT(requests, SizeIs(4));

  auto s = f_.local->RecordEngagement(requests[0]).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "field engagement.outcomes[1].score: a wemwbs score lies between "
            "14 and 70");
  s = f_.local->RecordEngagement(requests[1]).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "field engagement.outcomes[1].measured_at: the after measure of "
            "wemwbs is dated before its before measure");
  s = f_.local->RecordEngagement(requests[2]).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("field engagement.outcomes[1].stage: a second before "
                         "measure of swemwbs"));
  // Nothing refused was stored.
  auto tokens = f_.store->TokensOf("S-1");
  ASSERT_TRUE(tokens.ok());
  auto ids = f_.store->FindByToken((*tokens)[0]);
  ASSERT_TRUE(ids.ok());
  ASSERT_THAT(*ids, SizeIs(1));
  EXPECT_THAT(*f_.store->EngagementsOf((*ids)[0]), SizeIs(0));

  auto good = f_.local->RecordEngagement(requests[3]);
  ASSERT_TRUE(good.ok()) << good.status();
  auto stored = f_.store->EngagementsOf((*ids)[0]);
  ASSERT_TRUE(stored.ok());
  ASSERT_THAT(*stored, SizeIs(1));
  EXPECT_EQ((*stored)[0].SerializeAsString(),
            requests[3].engagement().SerializeAsString());
}

TEST_F(LocalApiTest, MonitoringValuesOutsideTheirEnumsAreRefusedByTheSchema) {
  // The generic schema check (ValidateMessage) already refuses, on the new
  // fields, numbers that are not values of their enum and measures without
  // an instrument or a stage; the engagement check never sees them.
  ASSERT_TRUE(f_.local->UpsertSubject(Person("S-1")).ok());
  accord::v1::RecordEngagementRequest base;
  base.mutable_engagement()->set_subject_local_id("S-1");
  base.mutable_engagement()->set_service("isva");
  *base.mutable_engagement()->mutable_started_at() =
      ToProtoTime(f_.clock.Now());
  auto measure = [](accord::v1::RecordEngagementRequest* r) {
    auto* m = r->mutable_engagement()->add_outcomes();
    m->set_instrument(accord::v1::OUTCOME_INSTRUMENT_WEMWBS);
    m->set_stage(accord::v1::OUTCOME_STAGE_BEFORE);
    m->set_score(40);
    return m;
  };
  struct Case {
    std::string name;
    accord::v1::RecordEngagementRequest request;
    std::string message;
  };
  std::vector<Case> cases(8, {"", base, ""});
  cases[0].name = "referral source";
  cases[0].request.mutable_engagement()->set_referral_source(
      static_cast<accord::v1::ReferralSource>(99));
  cases[0].message =
      "field engagement.referral_source has unknown value 99 for "
      "accord.v1.ReferralSource";
  cases[1].name = "ethnicity";
  cases[1].request.mutable_engagement()->mutable_monitoring()->set_ethnicity(
      static_cast<accord::v1::Ethnicity>(21));
  cases[1].message = "field engagement.monitoring.ethnicity has unknown value";
  cases[2].name = "age band";
  cases[2].request.mutable_engagement()->mutable_monitoring()->set_age_band(
      static_cast<accord::v1::AgeBand>(10));
  cases[2].message = "field engagement.monitoring.age_band has unknown value";
  cases[3].name = "disability";
  cases[3].request.mutable_engagement()->mutable_monitoring()->set_disability(
      static_cast<accord::v1::Disability>(-1));
  cases[3].message = "field engagement.monitoring.disability has unknown value";
  cases[4].name = "sex";
  cases[4].request.mutable_engagement()->mutable_monitoring()->set_sex(
      static_cast<accord::v1::Sex>(4));
  cases[4].message = "field engagement.monitoring.sex has unknown value";
  cases[5].name = "instrument";
  measure(&cases[5].request)
      ->set_instrument(static_cast<accord::v1::OutcomeInstrument>(4));
  cases[5].message =
      "field engagement.outcomes[0].instrument has unknown value";
  cases[6].name = "no instrument";
  measure(&cases[6].request)
      ->set_instrument(accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED);
  cases[6].message = "field engagement.outcomes[0].instrument must be set";
  cases[7].name = "stage";
  measure(&cases[7].request)
      ->set_stage(static_cast<accord::v1::OutcomeStage>(3));
  cases[7].message = "field engagement.outcomes[0].stage has unknown value";
  for (const auto& c : cases) {
    auto s = f_.local->RecordEngagement(c.request).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(s.message()), StartsWith(c.message)) << c.name;
  }
  // Unspecified demographics and referral source mean "not recorded".
  auto unrecorded = base;
  unrecorded.mutable_engagement()->mutable_monitoring();
  measure(&unrecorded);
  EXPECT_TRUE(f_.local->RecordEngagement(unrecorded).ok());
}

// ---------------------------------------------------------------------------
// One person, one local id

TEST_F(LocalApiTest, ASecondLocalIdForTheSamePersonIsRefusedNamingTheFirst) {
  auto first = f_.local->UpsertSubject(Person("WC-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created());
  // Written another way, under another id: the same name and date of birth.
  auto again = f_.local->UpsertSubject(
      Person("WC-7", "ZOE", "ashworth hale", "14/05/1991"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()),
              StartsWith("field subject: this person is already held here "
                         "under another id (same name and date of birth of "
                         "subject 'WC-1')"));
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("merge_local_ids"));
  EXPECT_FALSE(f_.store->TokensOf("WC-7").ok());

  // Her NHS number, given later, is hers alone too.
  ASSERT_TRUE(f_.local
                  ->UpsertSubject(Person("WC-1", "Zoë", "Ashworth-Hale",
                                         "1991-05-14", "943 476 5919"))
                  .ok());
  auto by_nhs = f_.local->UpsertSubject(
      Person("WC-8", "Z", "Hale", "1990-01-01", "9434765919"));
  EXPECT_EQ(by_nhs.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(by_nhs.status().message()),
              HasSubstr("same NHS number of subject 'WC-1'"));

  // Her own record is hers to update.
  auto update = f_.local->UpsertSubject(
      Person("WC-1", "Zoë", "Ashworth-Hale", "1991-05-14", "943 476 5919"));
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_FALSE(update->created());
  // Another woman of the same name and birthday, told apart by her own NHS
  // number, is someone else.
  auto namesake = f_.local->UpsertSubject(
      Person("WC-9", "Zoë", "Ashworth-Hale", "1991-05-14", "401 023 2137"));
  ASSERT_TRUE(namesake.ok()) << namesake.status();
  EXPECT_TRUE(namesake->created());
  // A shared date of birth and postcode is not an identity.
  auto neighbour = Person("WC-10", "Amy", "Bell", "1991-05-14");
  (*neighbour.mutable_subject()->mutable_fields())["postcode"] = "LS6 2AB";
  auto first_with_postcode = Person("WC-11", "Cat", "Dunn", "1991-05-14");
  (*first_with_postcode.mutable_subject()->mutable_fields())["postcode"] =
      "LS6 2AB";
  ASSERT_TRUE(f_.local->UpsertSubject(first_with_postcode).ok());
  EXPECT_TRUE(f_.local->UpsertSubject(neighbour).ok());
}

// Two local ids of one woman, as an agent that did not check wrote them.
class DuplicatesHeldTest : public LocalApiTest {
 protected:
  void SetUp() override {
    for (const char* id : {"WC-1", "WC-2"}) {
      accord::v1::Subject subject = Person(id).subject();
      auto tokens = PrepareSubject(*f_.key, &subject);
      ASSERT_TRUE(tokens.ok());
      ASSERT_TRUE(f_.store
                      ->Write([&](AgentStore::Writer& w) {
                        return w.UpsertSubject(subject, *tokens).status();
                      })
                      .ok());
      ASSERT_TRUE(f_.local
                      ->UpsertRecord(Record(absl::StrCat("R-", id), id,
                                            absl::StrCat("Needs of ", id)))
                      .ok());
      auto consent = GoodConsent(id);
      consent.mutable_consent()->set_id(absl::StrCat("C-", id));
      ASSERT_TRUE(f_.local->RecordConsent(consent).ok());
      accord::v1::RecordEngagementRequest e;
      e.mutable_engagement()->set_subject_local_id(id);
      e.mutable_engagement()->set_service("isva");
      *e.mutable_engagement()->mutable_started_at() =
          ToProtoTime(absl::FromUnixSeconds(1767225600));
      ASSERT_TRUE(f_.local->RecordEngagement(e).ok());
    }
    accord::v1::RecordEngagementRequest e;
    e.mutable_engagement()->set_subject_local_id("WC-2");
    e.mutable_engagement()->set_service("counselling");
    *e.mutable_engagement()->mutable_started_at() =
        ToProtoTime(absl::FromUnixSeconds(1768435200));
    ASSERT_TRUE(f_.local->RecordEngagement(e).ok());
  }

  accord::v1::DiscloseResponse Query() {
    accord::v1::Subject subject = Person("any").subject();
    auto tokens = PrepareSubject(*f_.key, &subject);
    EXPECT_TRUE(tokens.ok());
    accord::v1::DiscloseRequest r;
    r.set_request_id("req-1");
    r.set_requester_org("vol-b");
    r.set_purpose("support");
    r.set_mode(accord::v1::QUERY_MODE_RECORDS);
    for (const auto& t : *tokens) *r.add_subjects() = t;
    accord::v1::DecisionRequest d;
    d.set_requester_org("vol-b");
    d.set_holder_org("vol-a");
    d.set_action(accord::v1::ACTION_QUERY);
    d.set_purpose("support");
    *d.mutable_at() = ToProtoTime(f_.clock.Now());
    *r.mutable_decision() = f_.engine->DecideProto(d);
    return f_.discloser->Disclose(r);
  }

  int64_t Count(const std::string& sql) {
    auto db = sqlite::Database::Open(f_.dir + "/agent.db");
    EXPECT_TRUE(db.ok());
    auto q = (*db)->Prepare(sql);
    EXPECT_TRUE(q.ok()) << q.status();
    EXPECT_TRUE(q->Next().ok());
    return q->Int(0);
  }
};

TEST_F(DuplicatesHeldTest, MergingThemMovesEverythingToOneIdAtOnce) {
  // As held, every query about her is ambiguous.
  auto before = Query();
  EXPECT_EQ(before.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(before.detail(), HasSubstr("more than one person"));

  // Writing to either names the other.
  auto refused = f_.local->UpsertSubject(Person("WC-1"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("subject 'WC-2'"));
  // Only a duplicate may be merged.
  auto request = Person("WC-1");
  request.add_merge_local_ids("WC-2");
  request.add_merge_local_ids("WC-404");
  auto stranger = f_.local->UpsertSubject(request);
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(stranger.status().message()),
              StartsWith("field merge_local_ids[1]: subject 'WC-404' is not "
                         "held here with this person's"));
  EXPECT_TRUE(f_.store->TokensOf("WC-2").ok());  // nothing changed

  request.clear_merge_local_ids();
  request.add_merge_local_ids("WC-2");
  auto merged = f_.local->UpsertSubject(request);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_THAT(merged->merged_local_ids(), ::testing::ElementsAre("WC-2"));
  EXPECT_FALSE(f_.store->TokensOf("WC-2").ok());

  // One person now: both records, both consents (terms as given), the
  // engagements without the one both ids held.
  auto after = Query();
  ASSERT_EQ(after.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << after.detail();
  std::vector<std::string> texts;
  for (const auto& r : after.records()) texts.push_back(r.text());
  EXPECT_THAT(
      texts, ::testing::UnorderedElementsAre("Needs of WC-1", "Needs of WC-2"));
  auto consents = f_.store->Consents("WC-1");
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(*consents, SizeIs(2));
  EXPECT_EQ((*consents)[1].id(), "C-WC-2");
  EXPECT_EQ((*consents)[1].subject_local_id(), "WC-2");  // as given
  auto tokens = f_.store->TokensOf("WC-1");
  ASSERT_TRUE(tokens.ok());
  auto ids = f_.store->FindByToken((*tokens)[0]);
  ASSERT_THAT(*ids, SizeIs(1));
  auto engagements = f_.store->EngagementsOf((*ids)[0]);
  ASSERT_TRUE(engagements.ok());
  ASSERT_THAT(*engagements, SizeIs(2));
  for (const auto& e : *engagements) EXPECT_EQ(e.subject_local_id(), "WC-1");
  auto view = f_.store->LoadSubject((*ids)[0], true);
  ASSERT_TRUE(view.ok());
  for (const auto& r : view->records) EXPECT_EQ(r.subject_local_id(), "WC-1");
  EXPECT_EQ(Count("SELECT count(*) FROM subject_merges WHERE from_local_id = "
                  "'WC-2' AND into_local_id = 'WC-1' AND records = 1 AND "
                  "consents = 1 AND engagements = 1"),
            1);
  // The consents' terms still cannot be changed.
  auto db = sqlite::Database::Open(f_.dir + "/agent.db");
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE((*db)->Exec("UPDATE consents SET body = x'00'").ok());
  EXPECT_FALSE((*db)->Exec("UPDATE consents SET id = 'other'").ok());
}

TEST_F(DuplicatesHeldTest, AMergeThatFailsPartWayChangesNothing) {
  {
    auto db = sqlite::Database::Open(f_.dir + "/agent.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("CREATE TRIGGER refuse_merge BEFORE INSERT ON "
                           "subject_merges BEGIN SELECT RAISE(ABORT, 'disk "
                           "full'); END")
                    .ok());
  }
  auto request = Person("WC-1");
  request.add_merge_local_ids("WC-2");
  auto failed = f_.local->UpsertSubject(request);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("disk full"));
  // Both ids as they were, each with its own record and consent.
  EXPECT_TRUE(f_.store->TokensOf("WC-2").ok());
  EXPECT_EQ(Count("SELECT count(*) FROM records r JOIN subjects s ON s.id = "
                  "r.subject_id WHERE s.local_id = 'WC-2'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM consents c JOIN subjects s ON s.id = "
                  "c.subject_id WHERE s.local_id = 'WC-2'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM engagements"), 3);
}

}  // namespace
}  // namespace accord::agent
