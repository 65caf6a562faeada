// Disclosure at the holder: matching by token, consent at the moment of
// disclosure, the no-consent clause, minimisation, involvement mode and the
// holder's own policy check. Real SQLite store in a temporary directory.

#include "agent/disclosure.h"

#include "absl/strings/match.h"
#include "agent/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/minimise.h"
#include "runtime/sqlite.h"

namespace accord::agent {
namespace {

using testing::AgentFixture;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing::TestNow;

google::protobuf::Timestamp Day(int y, int m, int d) {
  return ToProtoTime(
      absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone()));
}

class DisclosureTest : public ::testing::Test {
 protected:
  DisclosureTest() : f_("disclosure") {}

  void SetUp() override {
    accord::v1::UpsertSubjectRequest s = testing::ZoeSubject();
    auto& fields = *s.mutable_subject()->mutable_fields();
    fields["phone"] = "07700 900123";
    fields["nhs_number"] = "943 476 5919";
    ASSERT_TRUE(f_.local->UpsertSubject(s).ok());
    AddRecord("R-needs", accord::v1::DATA_CATEGORY_NEEDS,
              accord::v1::PROVENANCE_FACT, "Wants help with housing.");
    AddRecord("R-summary", accord::v1::DATA_CATEGORY_CASE_SUMMARY,
              accord::v1::PROVENANCE_FACT, "Her story, as she agreed.");
    AddRecord("R-risk", accord::v1::DATA_CATEGORY_RISK,
              accord::v1::PROVENANCE_OPINION, "Assessed as high risk.");
    accord::v1::RecordEngagementRequest e;
    e.mutable_engagement()->set_subject_local_id("S-1");
    e.mutable_engagement()->set_service("isva");
    *e.mutable_engagement()->mutable_started_at() = Day(2026, 1, 10);
    ASSERT_TRUE(f_.local->RecordEngagement(e).ok());
  }

  void AddRecord(const std::string& id, accord::v1::DataCategory category,
                 accord::v1::Provenance provenance, const std::string& text) {
    accord::v1::UpsertRecordRequest r;
    auto* rec = r.mutable_record();
    rec->set_local_id(id);
    rec->set_subject_local_id("S-1");
    rec->set_category(category);
    rec->set_provenance(provenance);
    rec->set_service("isva");
    rec->set_author_role("ISVA");
    *rec->mutable_recorded_at() = Day(2026, 2, 1);
    rec->set_text(text);
    ASSERT_TRUE(f_.local->UpsertRecord(r).ok());
  }

  std::string Consent(std::vector<std::string> orgs,
                      std::vector<accord::v1::OrgKind> kinds,
                      std::vector<std::string> purposes,
                      std::vector<accord::v1::DataCategory> categories,
                      absl::Duration expires_in = absl::InfiniteDuration()) {
    accord::v1::RecordConsentRequest req;
    auto* c = req.mutable_consent();
    c->set_subject_local_id("S-1");
    for (auto& o : orgs) c->add_granted_to_orgs(o);
    for (auto k : kinds) c->add_granted_to_kinds(k);
    for (auto& p : purposes) c->add_purposes(p);
    for (auto k : categories) c->add_categories(k);
    *c->mutable_given_at() = ToProtoTime(f_.clock.Now() - absl::Hours(1));
    c->set_method(accord::v1::CONSENT_METHOD_WRITTEN);
    c->set_recorded_by("ISVA Isla Vance");
    if (expires_in != absl::InfiniteDuration())
      *c->mutable_expires_at() = ToProtoTime(f_.clock.Now() + expires_in);
    auto resp = f_.local->RecordConsent(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->consent_id() : "";
  }

  std::string SupportConsent(
      absl::Duration expires_in = absl::InfiniteDuration()) {
    return Consent(
        {"vol-b"}, {}, {"support"},
        {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_CONTACT,
         accord::v1::DATA_CATEGORY_NEEDS,
         accord::v1::DATA_CATEGORY_CASE_SUMMARY},
        expires_in);
  }

  // Tokens as a caller derives them from its own way of writing the person.
  std::vector<accord::v1::SubjectToken> Tokens(const std::string& given,
                                               const std::string& family,
                                               const std::string& dob) {
    linkage::IdentifierSet ids;
    ids.given_name = given;
    ids.family_name = family;
    ids.date_of_birth = dob;
    auto t = linkage::DeriveTokens(*f_.key, ids);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : std::vector<accord::v1::SubjectToken>{};
  }

  // A request as the gateway builds it, with the gateway's decision from the
  // same agreements (unless the test forges one).
  accord::v1::DiscloseRequest Request(
      const std::string& requester, const std::string& purpose,
      accord::v1::QueryMode mode = accord::v1::QUERY_MODE_RECORDS) {
    accord::v1::DiscloseRequest r;
    r.set_request_id("req-1");
    r.set_requester_org(requester);
    r.set_purpose(purpose);
    r.set_mode(mode);
    for (auto& t : Tokens("ZOE", "OBRIEN SMITH", "07/03/1990"))
      *r.add_subjects() = t;
    return r;
  }

  accord::v1::DiscloseResponse Disclose(accord::v1::DiscloseRequest r) {
    accord::v1::DecisionRequest d;
    d.set_requester_org(r.requester_org());
    d.set_holder_org("vol-a");
    d.set_action(accord::v1::ACTION_QUERY);
    d.set_purpose(r.purpose());
    *d.mutable_fields() = r.fields();
    *d.mutable_categories() = r.categories();
    d.set_involvement_only(r.mode() == accord::v1::QUERY_MODE_INVOLVEMENT);
    if (r.has_no_consent()) *d.mutable_no_consent() = r.no_consent();
    *d.mutable_at() = ToProtoTime(f_.clock.Now());
    if (!r.has_decision()) *r.mutable_decision() = f_.engine->DecideProto(d);
    return f_.discloser->Disclose(r);
  }

  static bool HasCategory(const accord::v1::DiscloseResponse& r,
                          accord::v1::DataCategory c) {
    for (const auto& rec : r.records()) {
      if (rec.category() == c) return true;
    }
    return false;
  }

  static const accord::v1::Withheld* WithheldOf(
      const accord::v1::DiscloseResponse& r, const std::string& what) {
    for (const auto& w : r.withheld()) {
      if (w.what() == what) return &w;
    }
    return nullptr;
  }

  static void ExpectNothingReleased(const accord::v1::DiscloseResponse& r) {
    EXPECT_THAT(r.fields(), IsEmpty());
    EXPECT_THAT(r.records(), IsEmpty());
    EXPECT_THAT(r.involvement(), IsEmpty());
  }

  AgentFixture f_;
};

TEST_F(DisclosureTest, ConsentedSupportQueryReleasesMinimisedFields) {
  SupportConsent();
  auto r = Disclose(Request("vol-b", "support"));
  ASSERT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED) << r.detail();
  EXPECT_EQ(r.fields().at("given_name"), "Zoë");
  // Generalised: date of birth to the year, postcode to its district.
  EXPECT_EQ(r.fields().at("date_of_birth"), "1990");
  EXPECT_EQ(r.fields().at("postcode"), "LS6");
  // Dropped by the rule: never in the answer.
  EXPECT_EQ(r.fields().count("phone"), 0u);
  // Pseudonymised per recipient.
  const policy::MinimiseContext ctx{TestNow(), "vol-b",
                                    AgentFixture::kPseudonymKey};
  EXPECT_EQ(r.fields().at("family_name"),
            policy::Pseudonym("O'Brien-Smith", ctx));
  EXPECT_TRUE(absl::StartsWith(r.fields().at("family_name"), "psd:"));
  ASSERT_TRUE(HasCategory(r, accord::v1::DATA_CATEGORY_NEEDS));
  for (const auto& rec : r.records()) {
    EXPECT_NE(rec.category(), accord::v1::DATA_CATEGORY_RISK);
    EXPECT_TRUE(absl::StartsWith(rec.ref(), "psd:")) << rec.ref();
    if (rec.category() == accord::v1::DATA_CATEGORY_CASE_SUMMARY) {
      EXPECT_EQ(rec.recorded(), "2026");  // DATE_TO_YEAR on the record date
    } else {
      EXPECT_EQ(rec.recorded(), "2026-02-01");
    }
  }
}

TEST_F(DisclosureTest, AgeBandAndPseudonymDifferPerRecipient) {
  SupportConsent();
  Consent({"police"}, {}, {"safeguarding"},
          {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_RISK});
  auto to_b = Disclose(Request("vol-b", "support"));
  auto to_police = Disclose(Request("police", "safeguarding"));
  ASSERT_EQ(to_b.status(), accord::v1::HOLDER_STATUS_ANSWERED) << to_b.detail();
  ASSERT_EQ(to_police.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << to_police.detail();
  // Born 1990-03-07, asked on 2026-03-15: 36, in the 35-39 band.
  EXPECT_EQ(to_police.fields().at("date_of_birth"), "35-39");
  // The same person's family name and records cannot be linked across
  // recipients, but are stable for one recipient.
  EXPECT_NE(to_b.fields().at("family_name"),
            to_police.fields().at("family_name"));
  EXPECT_EQ(Disclose(Request("vol-b", "support")).fields().at("family_name"),
            to_b.fields().at("family_name"));
  ASSERT_TRUE(HasCategory(to_police, accord::v1::DATA_CATEGORY_RISK));
}

TEST_F(DisclosureTest, RecordsKeepTheirFactOrOpinionMark) {
  Consent({"police"}, {}, {"safeguarding"},
          {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_RISK});
  SupportConsent();
  auto police = Disclose(Request("police", "safeguarding"));
  ASSERT_EQ(police.status(), accord::v1::HOLDER_STATUS_ANSWERED);
  ASSERT_THAT(police.records(), SizeIs(1));
  EXPECT_EQ(police.records(0).provenance(), accord::v1::PROVENANCE_OPINION);
  auto b = Disclose(Request("vol-b", "support"));
  for (const auto& rec : b.records())
    EXPECT_EQ(rec.provenance(), accord::v1::PROVENANCE_FACT);
}

TEST_F(DisclosureTest, TokensMatchAcrossDifferentlyWrittenNames) {
  SupportConsent();
  // Stored as "Zoë" / "O'Brien-Smith" / 1990-03-07; asked as others write it.
  const std::vector<std::vector<std::string>> spellings = {
      {"ZOE", "OBRIEN SMITH", "07/03/1990"},
      {"  zoë ", "o’brien-smith", "1990-03-07"},
      {"Zoe\xCC\x88", "O'BRIEN  SMITH", "19900307"},  // decomposed ë
      {"zoe", "O`Brien Smith", "7/3/1990"},
  };
  for (const auto& s : spellings) {
    auto req = Request("vol-b", "support");
    req.clear_subjects();
    for (auto& t : Tokens(s[0], s[1], s[2])) *req.add_subjects() = t;
    auto r = Disclose(req);
    EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED)
        << s[0] << " " << s[1] << " " << s[2] << ": " << r.detail();
  }
  // A different person does not match.
  auto req = Request("vol-b", "support");
  req.clear_subjects();
  for (auto& t : Tokens("Zoe", "OBrien Smith", "1990-03-08"))
    *req.add_subjects() = t;
  EXPECT_EQ(Disclose(req).status(), accord::v1::HOLDER_STATUS_NO_MATCH);
}

TEST_F(DisclosureTest, WithdrawalTakesEffectOnTheNextDisclosure) {
  const std::string id = SupportConsent();
  auto before = Disclose(Request("vol-b", "support"));
  ASSERT_EQ(before.status(), accord::v1::HOLDER_STATUS_ANSWERED);
  ASSERT_FALSE(before.fields().empty());

  accord::v1::WithdrawConsentRequest w;
  w.set_consent_id(id);
  w.set_recorded_by("ISVA Isla Vance");
  ASSERT_TRUE(f_.local->WithdrawConsent(w).ok());

  auto after = Disclose(Request("vol-b", "support"));
  EXPECT_EQ(after.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(after.detail(), HasSubstr("no current consent"));
  ExpectNothingReleased(after);
}

TEST_F(DisclosureTest, ExpiredConsentReleasesNothing) {
  SupportConsent(/*expires_in=*/absl::Hours(24));
  ASSERT_EQ(Disclose(Request("vol-b", "support")).status(),
            accord::v1::HOLDER_STATUS_ANSWERED);
  f_.clock.Advance(absl::Hours(25));
  auto r = Disclose(Request("vol-b", "support"));
  EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_REFUSED);
  ExpectNothingReleased(r);
}

TEST_F(DisclosureTest, ConsentForAnotherPurposeDoesNotCount) {
  Consent(
      {"vol-b"}, {}, {"safeguarding"},
      {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_NEEDS});
  auto r = Disclose(Request("vol-b", "support"));
  EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(r.detail(), HasSubstr("another purpose"));
  ExpectNothingReleased(r);
}

TEST_F(DisclosureTest, ConsentToAnotherOrganisationDoesNotCount) {
  Consent(
      {"vol-c"}, {}, {"support"},
      {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_NEEDS});
  Consent(
      {}, {accord::v1::ORG_KIND_POLICE}, {"support"},
      {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_NEEDS});
  auto r = Disclose(Request("vol-b", "support"));
  EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(r.detail(), HasSubstr("another organisation"));
  ExpectNothingReleased(r);

  // Consent to every voluntary organisation does cover vol-b.
  Consent(
      {}, {accord::v1::ORG_KIND_VOLUNTARY}, {"support"},
      {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_NEEDS});
  auto ok = Disclose(Request("vol-b", "support"));
  EXPECT_EQ(ok.status(), accord::v1::HOLDER_STATUS_ANSWERED) << ok.detail();
  EXPECT_EQ(ok.fields().at("given_name"), "Zoë");
}

TEST_F(DisclosureTest, CategoriesOutsideTheConsentAreWithheldWithReason) {
  // Identity and needs only: postcode (contact) and case summary withheld.
  Consent(
      {"vol-b"}, {}, {"support"},
      {accord::v1::DATA_CATEGORY_IDENTITY, accord::v1::DATA_CATEGORY_NEEDS});
  auto req = Request("vol-b", "support");
  req.add_fields("postcode");
  req.add_fields("given_name");
  req.add_fields("phone");
  req.add_fields("ethnicity");
  auto r = Disclose(req);
  ASSERT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED) << r.detail();
  EXPECT_EQ(r.fields().count("postcode"), 0u);
  EXPECT_EQ(r.fields().at("given_name"), "Zoë");
  const auto* postcode = WithheldOf(r, "postcode");
  ASSERT_NE(postcode, nullptr);
  EXPECT_THAT(postcode->reason(), HasSubstr("consent"));
  const auto* phone = WithheldOf(r, "phone");
  ASSERT_NE(phone, nullptr);
  EXPECT_THAT(phone->reason(), HasSubstr("not released by agreement test-isa"));
  const auto* ethnicity = WithheldOf(r, "ethnicity");
  ASSERT_NE(ethnicity, nullptr);
  EXPECT_THAT(ethnicity->reason(), HasSubstr("not released by"));
}

TEST_F(DisclosureTest, NoConsentClauseNeedsJustificationAndApprover) {
  // No consent to the police at all.
  accord::v1::NoConsentAssertion full;
  full.set_basis(accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM);
  full.set_reason(
      accord::v1::CONSENT_NOT_SOUGHT_REASON_WOULD_PREJUDICE_PROTECTION);
  full.set_justification("Perpetrator released today; she cannot be reached.");
  full.mutable_approver()->set_user_id("insp-22");
  full.mutable_approver()->set_role("duty-inspector");

  auto req = Request("police", "safeguarding");
  *req.mutable_no_consent() = full;
  auto r = Disclose(req);
  ASSERT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED) << r.detail();
  EXPECT_TRUE(r.consent_set_aside());
  EXPECT_TRUE(HasCategory(r, accord::v1::DATA_CATEGORY_RISK));

  // The gateway's decision was made with the full assertion, but the request
  // reaching the holder lacks the approver: this holder's own copy refuses.
  const auto decision = req.decision();
  auto no_approver = Request("police", "safeguarding");
  *no_approver.mutable_no_consent() = full;
  no_approver.mutable_no_consent()->clear_approver();
  *no_approver.mutable_decision() = decision;
  auto r2 = Disclose(no_approver);
  EXPECT_EQ(r2.status(), accord::v1::HOLDER_STATUS_REFUSED);
  ExpectNothingReleased(r2);

  auto no_justification = Request("police", "safeguarding");
  *no_justification.mutable_no_consent() = full;
  no_justification.mutable_no_consent()->clear_justification();
  *no_justification.mutable_decision() = decision;
  auto r3 = Disclose(no_justification);
  EXPECT_EQ(r3.status(), accord::v1::HOLDER_STATUS_REFUSED);
  ExpectNothingReleased(r3);

  // Without any assertion and without consent, nothing.
  auto plain = Disclose(Request("police", "safeguarding"));
  EXPECT_NE(plain.status(), accord::v1::HOLDER_STATUS_ANSWERED);
  ExpectNothingReleased(plain);
}

TEST_F(DisclosureTest, InvolvementModeReturnsContactsAndNoRecordContent) {
  // No consent needed under police-involvement; none recorded.
  auto r = Disclose(
      Request("police", "safeguarding", accord::v1::QUERY_MODE_INVOLVEMENT));
  ASSERT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED) << r.detail();
  ASSERT_THAT(r.involvement(), SizeIs(1));
  EXPECT_EQ(r.involvement(0).service(), "Sexual violence advisers");
  EXPECT_EQ(r.involvement(0).contact_name(), "Isla Vance");
  EXPECT_EQ(r.involvement(0).contact_phone(), "01632 960001");
  EXPECT_THAT(r.fields(), IsEmpty());
  EXPECT_THAT(r.records(), IsEmpty());
  // Nothing of the record text or identity appears anywhere in the answer.
  const std::string wire = r.SerializeAsString();
  EXPECT_FALSE(absl::StrContains(wire, "high risk"));
  EXPECT_FALSE(absl::StrContains(wire, "Zo"));
  EXPECT_FALSE(absl::StrContains(wire, "1990"));
}

TEST_F(DisclosureTest, RefusesADecisionItsOwnPolicyWouldNotAllow) {
  SupportConsent();
  // A forged "allow" for a purpose no rule permits vol-b.
  auto forged = Request("vol-b", "safeguarding");
  accord::v1::DecisionRequest d;
  d.set_requester_org("vol-b");
  d.set_holder_org("vol-a");
  d.set_action(accord::v1::ACTION_QUERY);
  d.set_purpose("support");
  *d.mutable_at() = ToProtoTime(f_.clock.Now());
  *forged.mutable_decision() = f_.engine->DecideProto(d);
  ASSERT_EQ(forged.decision().verdict(), accord::v1::VERDICT_ALLOW);
  auto r = Disclose(forged);
  EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(r.detail(), HasSubstr("does not allow"));
  ExpectNothingReleased(r);

  // The right rule but a wider field plan than the agreement's.
  auto wider = Request("vol-b", "support");
  *wider.mutable_decision() = f_.engine->DecideProto(d);
  auto* extra = wider.mutable_decision()->mutable_plan()->add_releases();
  extra->set_category(accord::v1::DATA_CATEGORY_RISK);
  extra->set_transform(accord::v1::TRANSFORM_KEEP);
  auto r2 = Disclose(wider);
  EXPECT_EQ(r2.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(r2.detail(), HasSubstr("differs"));
  ExpectNothingReleased(r2);

  // An organisation outside the partnership.
  auto stranger = Request("vol-z", "support");
  *stranger.mutable_decision() = f_.engine->DecideProto(d);
  EXPECT_EQ(Disclose(stranger).status(), accord::v1::HOLDER_STATUS_REFUSED);
}

TEST_F(DisclosureTest, AmbiguousWeakTokensReleaseNothing) {
  // A second person sharing date of birth and postcode.
  accord::v1::UpsertSubjectRequest s;
  s.mutable_subject()->set_local_id("S-2");
  auto& fields = *s.mutable_subject()->mutable_fields();
  fields["given_name"] = "Yasmin";
  fields["family_name"] = "Other";
  fields["date_of_birth"] = "1990-03-07";
  fields["postcode"] = "LS6 2AB";
  ASSERT_TRUE(f_.local->UpsertSubject(s).ok());
  SupportConsent();
  linkage::IdentifierSet ids;
  ids.date_of_birth = "1990-03-07";
  ids.postcode = "LS62AB";
  auto tokens = linkage::DeriveTokens(*f_.key, ids);
  ASSERT_TRUE(tokens.ok());
  auto req = Request("vol-b", "support");
  req.clear_subjects();
  for (auto& t : *tokens) *req.add_subjects() = t;
  auto r = Disclose(req);
  EXPECT_EQ(r.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(r.detail(), HasSubstr("more than one person"));
  ExpectNothingReleased(r);
}

// A body as an agent that did not check its input could have stored it:
// text that is not UTF-8 serialises, but never parses back.
template <typename Msg>
void StoreUnreadable(const std::string& db_path, const std::string& sql,
                     Msg body, const std::string& key) {
  body.set_local_id(body.local_id() + "\xff\xfe");
  auto db = sqlite::Database::Open(db_path);
  ASSERT_TRUE(db.ok());
  auto q = (*db)->Prepare(sql);
  ASSERT_TRUE(q.ok()) << q.status();
  q->BindBlob(1, body.SerializeAsString()).Bind(2, key);
  ASSERT_TRUE(q->Run().ok());
  ASSERT_EQ((*db)->Changes(), 1);
}

TEST_F(DisclosureTest, AnUnreadableStoredRowIsLeftOutNotTheWholePerson) {
  SupportConsent();
  AddRecord("R-needs-2", accord::v1::DATA_CATEGORY_NEEDS,
            accord::v1::PROVENANCE_FACT, "Also needs a solicitor.");
  accord::v1::Record bad;
  bad.set_local_id("R-needs");
  StoreUnreadable(f_.dir + "/agent.db",
                  "UPDATE records SET body = ? WHERE local_id = ?", bad,
                  "R-needs");
  auto r = Disclose(Request("vol-b", "support"));
  ASSERT_EQ(r.status(), accord::v1::HOLDER_STATUS_ANSWERED) << r.detail();
  // Everything else about her is released as before.
  EXPECT_EQ(r.fields().at("given_name"), "Zoë");
  EXPECT_TRUE(HasCategory(r, accord::v1::DATA_CATEGORY_CASE_SUMMARY));
  int needs = 0;
  for (const auto& rec : r.records()) {
    if (rec.category() != accord::v1::DATA_CATEGORY_NEEDS) continue;
    ++needs;
    EXPECT_EQ(rec.text(), "Also needs a solicitor.");
  }
  EXPECT_EQ(needs, 1);
  // The answer says what was left out, without its content.
  const auto* w = WithheldOf(r, "DATA_CATEGORY_NEEDS");
  ASSERT_NE(w, nullptr);
  EXPECT_THAT(w->reason(), HasSubstr("1 stored record of this category could "
                                     "not be read back here"));
  EXPECT_THAT(r.detail(), HasSubstr("1 stored row of records"));
}

TEST_F(DisclosureTest, AnUnreadableSubjectOrConsentRowDegradesOnlyItself) {
  // Two consents; the one that covers vol-b does not read back.
  SupportConsent();
  Consent({"vol-c"}, {}, {"support"}, {accord::v1::DATA_CATEGORY_NEEDS});
  {
    auto db = sqlite::Database::Open(f_.dir + "/agent.db");
    ASSERT_TRUE(db.ok());
    auto q = (*db)->Prepare("SELECT id FROM consents ORDER BY rowid LIMIT 1");
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE(q->Next().ok());
    const std::string first(q->Text(0));
    q->Reset();
    accord::v1::ConsentRecord bad;
    bad.set_id(first);
    bad.add_purposes("support\xff");
    // Consent records are append-only; this is a store damaged from outside.
    ASSERT_TRUE((*db)->Exec("DROP TRIGGER consents_never_updated").ok());
    auto u = (*db)->Prepare("UPDATE consents SET body = ? WHERE id = ?");
    ASSERT_TRUE(u.ok());
    u->BindBlob(1, bad.SerializeAsString()).Bind(2, first);
    ASSERT_TRUE(u->Run().ok());
  }
  auto refused = Disclose(Request("vol-b", "support"));
  // Without the consent nothing may be released: refused for that reason,
  // not because the store could not be read.
  EXPECT_EQ(refused.status(), accord::v1::HOLDER_STATUS_REFUSED);
  EXPECT_THAT(refused.detail(), HasSubstr("no current consent"));
  EXPECT_THAT(refused.detail(), HasSubstr("1 stored row of consents"));
  ExpectNothingReleased(refused);

  // Her own row (her fields) does not read back: her records still go.
  SupportConsent();
  accord::v1::Subject bad;
  bad.set_local_id("S-1");
  StoreUnreadable(f_.dir + "/agent.db",
                  "UPDATE subjects SET body = ? WHERE local_id = ?", bad,
                  "S-1");
  auto r = Request("vol-b", "support");
  r.add_fields("given_name");
  r.add_categories(accord::v1::DATA_CATEGORY_NEEDS);
  auto answer = Disclose(r);
  ASSERT_EQ(answer.status(), accord::v1::HOLDER_STATUS_ANSWERED)
      << answer.detail();
  EXPECT_THAT(answer.fields(), IsEmpty());
  EXPECT_TRUE(HasCategory(answer, accord::v1::DATA_CATEGORY_NEEDS));
  const auto* w = WithheldOf(answer, "given_name");
  ASSERT_NE(w, nullptr);
  EXPECT_THAT(w->reason(), HasSubstr("could not read back"));
  EXPECT_THAT(answer.detail(), HasSubstr("1 stored row of subjects"));
}

TEST_F(DisclosureTest, ConsentHistoryIsKeptAndNeverOverwritten) {
  const std::string id = SupportConsent();
  accord::v1::WithdrawConsentRequest w;
  w.set_consent_id(id);
  w.set_recorded_by("Key worker Ola");
  ASSERT_TRUE(f_.local->WithdrawConsent(w).ok());
  // A second withdrawal is refused; the first stands.
  auto again = f_.local->WithdrawConsent(w);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  // Recording a consent under the same id is refused.
  accord::v1::ListConsentsRequest list;
  list.set_subject_local_id("S-1");
  auto consents = f_.local->ListConsents(list);
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(consents->consents(), SizeIs(1));
  const auto& c = consents->consents(0);
  EXPECT_EQ(c.id(), id);
  EXPECT_TRUE(c.has_withdrawn_at());
  EXPECT_EQ(c.withdrawn_by(), "Key worker Ola");
  EXPECT_EQ(c.recorded_by(), "ISVA Isla Vance");  // the original, intact
  accord::v1::RecordConsentRequest dup;
  *dup.mutable_consent() = c;
  dup.mutable_consent()->clear_withdrawn_at();
  dup.mutable_consent()->clear_withdrawn_by();
  EXPECT_EQ(f_.local->RecordConsent(dup).status().code(),
            absl::StatusCode::kAlreadyExists);

  // The schema itself refuses to change or delete consent history.
  auto db = sqlite::Database::Open(f_.dir + "/agent.db");
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE((*db)->Exec("UPDATE consents SET body = x'00'").ok());
  EXPECT_FALSE((*db)->Exec("DELETE FROM consents").ok());
  EXPECT_FALSE((*db)->Exec("DELETE FROM consent_events").ok());
  EXPECT_FALSE((*db)->Exec("UPDATE consent_events SET event = 'given'").ok());
}

}  // namespace
}  // namespace accord::agent
