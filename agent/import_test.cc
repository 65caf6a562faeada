// Import: parsing CSV and JSON Lines as partners produce them, per-row
// validation with reasons naming the column, and per-row atomicity on a real
// SQLite store.

#include "agent/import.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace accord::agent {
namespace {

using testing::AgentFixture;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kHeader[] =
    "subject_id,given_name,family_name,date_of_birth,postcode,phone,"
    "record_id,record_category,record_provenance,record_date,record_text,"
    "consent_id,consent_to_orgs,consent_to_kinds,consent_purposes,"
    "consent_categories,consent_given,consent_method,consent_recorded_by,"
    "consent_expires,engagement_service,engagement_started\n";

// One subject with a record, a consent and an engagement.
constexpr char kGoodRow[] =
    "S-1,Zoë,O'Brien-Smith,07/03/1990,ls6 2ab,07700 900123,"
    "R-1,needs,fact,2026-02-01,\"Wants help with housing, and a solicitor.\","
    "C-1,vol-b,police,support;safeguarding,identity;needs,2026-02-01,written,"
    "ISVA Isla Vance,2027-02-01,isva,2026-01-10\n";

class ImportTest : public ::testing::Test {
 protected:
  ImportTest() : f_("import") {}

  absl::StatusOr<accord::v1::ImportReport> Import(
      const std::string& text,
      accord::v1::ImportFormat format = accord::v1::IMPORT_FORMAT_CSV,
      size_t chunk = 1 << 16) {
    ImportOptions options;
    options.partnership = f_.partnership.get();
    options.batch_rows = 3;  // several batches even in small files
    auto session =
        ImportSession::Start(format, f_.store.get(), f_.key.get(), options);
    if (!session.ok()) return session.status();
    for (size_t i = 0; i < text.size(); i += chunk) {
      if (auto s = (*session)->Feed(absl::string_view(text).substr(i, chunk));
          !s.ok()) {
        return s;
      }
    }
    return (*session)->Finish();
  }

  // Parses only (no store), returning rows and problems.
  void Parse(const std::string& text, accord::v1::ImportFormat format,
             size_t chunk, std::vector<ImportedRow>* rows,
             std::vector<RowProblem>* rejected) {
    ImportOptions options;
    options.partnership = f_.partnership.get();
    auto parser = RowParser::Create(format, options);
    ASSERT_TRUE(parser.ok());
    for (size_t i = 0; i < text.size(); i += chunk) {
      ASSERT_TRUE(
          (*parser)
              ->Feed(absl::string_view(text).substr(i, chunk), rows, rejected)
              .ok());
    }
    ASSERT_TRUE((*parser)->Finish(rows, rejected).ok());
  }

  bool HasSubject(const std::string& id) { return f_.store->TokensOf(id).ok(); }

  // The engagements stored for the subject with local id `id`.
  std::vector<accord::v1::Engagement> EngagementsOf(const std::string& id) {
    auto tokens = f_.store->TokensOf(id);
    if (!tokens.ok() || tokens->empty()) return {};
    auto ids = f_.store->FindByToken((*tokens)[0]);
    if (!ids.ok() || ids->size() != 1) return {};
    auto engagements = f_.store->EngagementsOf((*ids)[0]);
    return engagements.ok() ? *engagements
                            : std::vector<accord::v1::Engagement>{};
  }

  static std::string Reasons(const accord::v1::ImportReport& r) {
    std::vector<std::string> out;
    for (const auto& x : r.rejected())
      out.push_back(absl::StrCat(x.row(), ": ", x.reason()));
    return absl::StrJoin(out, "\n");
  }

  AgentFixture f_;
};

TEST_F(ImportTest, CsvRowWritesSubjectRecordConsentAndEngagement) {
  auto report = Import(absl::StrCat(kHeader, kGoodRow));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_read(), 1u);
  EXPECT_EQ(report->rows_applied(), 1u) << Reasons(*report);
  EXPECT_EQ(report->subjects_created(), 1u);
  EXPECT_EQ(report->records_written(), 1u);
  EXPECT_EQ(report->consents_recorded(), 1u);
  EXPECT_EQ(report->engagements_written(), 1u);

  auto tokens = f_.store->TokensOf("S-1");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, SizeIs(2));  // name + dob, dob + postcode
  auto ids = f_.store->FindByToken((*tokens)[0]);
  ASSERT_TRUE(ids.ok());
  ASSERT_THAT(*ids, SizeIs(1));
  auto view = f_.store->LoadSubject((*ids)[0], true);
  ASSERT_TRUE(view.ok());
  // Identifiers are stored in their canonical forms.
  EXPECT_EQ(view->subject.fields().at("date_of_birth"), "1990-03-07");
  EXPECT_EQ(view->subject.fields().at("postcode"), "LS6 2AB");
  EXPECT_EQ(view->subject.fields().at("given_name"), "Zoë");
  ASSERT_THAT(view->records, SizeIs(1));
  EXPECT_EQ(view->records[0].text(),
            "Wants help with housing, and a solicitor.");
  EXPECT_EQ(view->records[0].provenance(), accord::v1::PROVENANCE_FACT);
  auto consents = f_.store->ConsentsOf((*ids)[0]);
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(*consents, SizeIs(1));
  const auto& c = (*consents)[0];
  EXPECT_EQ(c.id(), "C-1");
  EXPECT_THAT(c.granted_to_orgs(), ::testing::ElementsAre("vol-b"));
  EXPECT_THAT(c.granted_to_kinds(),
              ::testing::ElementsAre(accord::v1::ORG_KIND_POLICE));
  EXPECT_THAT(c.purposes(), ::testing::ElementsAre("support", "safeguarding"));
  EXPECT_EQ(c.method(), accord::v1::CONSENT_METHOD_WRITTEN);
  EXPECT_TRUE(c.has_expires_at());
  auto engagements = f_.store->EngagementsOf((*ids)[0]);
  ASSERT_TRUE(engagements.ok());
  EXPECT_THAT(*engagements, SizeIs(1));
}

TEST_F(ImportTest, ChunksCutAnywhereGiveTheSameRows) {
  const std::string text = absl::StrCat(
      "\xEF\xBB\xBF", kHeader, kGoodRow,
      "S-2,\"Ann \"\"Nan\"\"\",Lee,1980-01-02,,,R-2,case summary,opinion,,"
      "\"Line one\r\nline two, with comma\",,,,,,,,,,,\r\n",
      ",,,,,,,,,,,,,,,,,,,,,\n",  // an empty spreadsheet row
      "S-3,Bo,Chen,1975-05-05\n");
  std::vector<ImportedRow> whole_rows;
  std::vector<RowProblem> whole_rejected;
  Parse(text, accord::v1::IMPORT_FORMAT_CSV, text.size(), &whole_rows,
        &whole_rejected);
  ASSERT_THAT(whole_rejected, SizeIs(0))
      << whole_rejected[0].row << " " << whole_rejected[0].reason;
  ASSERT_THAT(whole_rows, SizeIs(3));
  EXPECT_EQ(whole_rows[1].subject_fields.at("given_name"), "Ann \"Nan\"");
  ASSERT_TRUE(whole_rows[1].record.has_value());
  EXPECT_EQ(whole_rows[1].record->text(), "Line one\r\nline two, with comma");
  EXPECT_EQ(whole_rows[1].record->category(),
            accord::v1::DATA_CATEGORY_CASE_SUMMARY);
  EXPECT_EQ(whole_rows[1].record->provenance(), accord::v1::PROVENANCE_OPINION);
  // Rows are numbered as a spreadsheet shows them: header 1, then 2, 3;
  // the blank row (4) is skipped.
  EXPECT_EQ(whole_rows[0].row, 2u);
  EXPECT_EQ(whole_rows[1].row, 3u);
  EXPECT_EQ(whole_rows[2].row, 5u);
  for (size_t chunk : {1, 2, 3, 7, 64}) {
    std::vector<ImportedRow> rows;
    std::vector<RowProblem> rejected;
    Parse(text, accord::v1::IMPORT_FORMAT_CSV, chunk, &rows, &rejected);
    ASSERT_THAT(rows, SizeIs(3)) << "chunk " << chunk;
    EXPECT_THAT(rejected, SizeIs(0));
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i].row, whole_rows[i].row);
      EXPECT_EQ(rows[i].subject_fields, whole_rows[i].subject_fields);
      EXPECT_EQ(rows[i].record.has_value(), whole_rows[i].record.has_value());
    }
  }
}

TEST_F(ImportTest, HeaderColumnsAreForgivingButUnknownColumnsStopTheFile) {
  auto ok = Import(
      "Subject ID, Given Name ,FAMILY-NAME,Date of Birth\n"
      "S-1,Zoe,Ash,1990-01-01\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->rows_applied(), 1u) << Reasons(*ok);

  auto typo = Import("subject_id,given_name,famliy_name\nS-1,Zoe,Ash\n");
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(typo.status().message(), HasSubstr("famliy_name"));
  EXPECT_THAT(typo.status().message(), HasSubstr("row 1"));

  auto no_id = Import("given_name,family_name\nZoe,Ash\n");
  EXPECT_THAT(no_id.status().message(), HasSubstr("subject_id"));

  auto dup = Import("subject_id,given_name,Given Name\nS,a,b\n");
  EXPECT_THAT(dup.status().message(), HasSubstr("appears twice"));

  auto empty = Import("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);

  auto open_quote = Import("subject_id,given_name\nS-1,\"Zoe\n");
  EXPECT_THAT(open_quote.status().message(), HasSubstr("quote"));
}

TEST_F(ImportTest, BadRowsAreRejectedWithRowNumberAndColumn) {
  const std::string text = absl::StrCat(
      "subject_id,given_name,family_name,date_of_birth,postcode,"
      "record_id,record_category,record_provenance,record_text,"
      "consent_to_orgs,consent_purposes,consent_categories,consent_given,"
      "consent_method,consent_recorded_by\n",
      // 2: good
      "S-1,Zoe,Ash,1990-01-01,,,,,,,,,,,\n",
      // 3: impossible date of birth
      "S-2,Amy,Bell,1990-02-30,,,,,,,,,,,\n",
      // 4: malformed postcode
      "S-3,Cat,Dunn,1991-01-01,NOT A POSTCODE,,,,,,,,,,\n",
      // 5: record without fact/opinion mark
      "S-4,Di,Eve,1992-01-01,,R-4,needs,,text,,,,,,\n",
      // 6: consent to an organisation outside the partnership
      "S-5,Ed,Fox,1993-01-01,,,,,,polise,support,identity,2026-01-01,"
      "written,K\n",
      // 7: unknown consent category
      "S-6,Fi,Gee,1994-01-01,,,,,,vol-b,support,identity;dna,2026-01-01,"
      "written,K\n",
      // 8: no subject id
      ",Gus,Hale,1995-01-01,,,,,,,,,,,\n",
      // 9: too many cells
      "S-7,Hal,Ide,1996-01-01,,,,,,,,,,,,extra\n",
      // 10: no identifiers from which a token can be derived
      "S-8,Ivy,,,,,,,,,,,,,\n",
      // 11: good
      "S-9,Jo,Kay,1997-01-01,,R-9,risk,opinion,High risk.,,,,,,\n");
  auto report = Import(text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_read(), 10u);
  EXPECT_EQ(report->rows_applied(), 2u) << Reasons(*report);
  EXPECT_EQ(report->rows_rejected(), 8u);
  ASSERT_THAT(report->rejected(), SizeIs(8));
  const std::vector<std::pair<uint64_t, std::string>> want = {
      {3, "date_of_birth:"},
      {4, "postcode:"},
      {5, "record_provenance:"},
      {6, "consent_to_orgs:"},
      {7, "consent_categories:"},
      {8, "subject_id:"},
      {9, "cells"},
      {10, "subject_id: no subject with this id is held"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(report->rejected(i).row(), want[i].first) << Reasons(*report);
    EXPECT_THAT(report->rejected(i).reason(), HasSubstr(want[i].second))
        << Reasons(*report);
  }
  // Reasons never repeat a cell's value.
  for (const auto& r : report->rejected()) {
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("polise")));
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("NOT A POSTCODE")));
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("1990-02-30")));
  }
  EXPECT_TRUE(HasSubject("S-1"));
  EXPECT_TRUE(HasSubject("S-9"));
  for (const char* id : {"S-2", "S-3", "S-4", "S-5", "S-6", "S-7", "S-8"})
    EXPECT_FALSE(HasSubject(id)) << id;
}

TEST_F(ImportTest, ARowFailingPartWayWritesNothingOfItself) {
  // C-1 already records other terms for S-1.
  ASSERT_TRUE(Import(absl::StrCat(kHeader, kGoodRow))->rows_applied() == 1);
  auto before = f_.store->SubjectCount();
  ASSERT_TRUE(before.ok());
  // Row 2: a new subject, a record and an engagement that are all valid, and
  // a consent that reuses C-1 with different terms: the store refuses the
  // consent after the subject and the record were written.
  const std::string clash =
      "S-NEW,Amy,Bell,1980-01-01,,,R-NEW,needs,fact,2026-02-01,Needs.,"
      "C-1,vol-b,,support,identity,2026-02-01,verbal,Someone Else,,isva,"
      "2026-01-10\n";
  // Row 3: a good row after it, in the same batch.
  const std::string good = "S-OK,Bo,Chen,1975-05-05,,,,,,,,,,,,,,,,,,\n";
  auto report = Import(absl::StrCat(kHeader, clash, good));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_THAT(report->rejected(), SizeIs(1));
  EXPECT_EQ(report->rejected(0).row(), 2u);
  EXPECT_THAT(report->rejected(0).reason(), StartsWith("consent_id:"));
  EXPECT_THAT(report->rejected(0).reason(), HasSubstr("never overwritten"));
  EXPECT_EQ(report->rows_applied(), 1u);
  // Nothing of row 2: no subject, no record, no engagement.
  EXPECT_FALSE(HasSubject("S-NEW"));
  EXPECT_EQ(*f_.store->SubjectCount(), *before + 1);  // only S-OK
  EXPECT_TRUE(HasSubject("S-OK"));
  // And C-1 is unchanged.
  auto consents = f_.store->Consents("S-1");
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(*consents, SizeIs(1));
  EXPECT_EQ((*consents)[0].recorded_by(), "ISVA Isla Vance");
}

TEST_F(ImportTest, AWriteFailingPartWayRollsBackOnlyThatRow) {
  // A store that refuses one engagement, the last thing a row writes: the
  // row's subject, record and consent are written before it fails.
  {
    auto db = sqlite::Database::Open(f_.dir + "/agent.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("CREATE TRIGGER refuse_engagement BEFORE INSERT "
                           "ON engagements WHEN NEW.service = 'closed' "
                           "BEGIN SELECT RAISE(ABORT, 'service closed'); END")
                    .ok());
  }
  const std::string text = absl::StrCat(
      kHeader, "S-A,Ann,Ash,1980-01-01,,,,,,,,,,,,,,,,,isva,2026-01-01\n",
      "S-X,Xan,Xu,1981-01-01,,,R-X,needs,fact,,Needs.,C-X,vol-b,,support,"
      "identity,2026-02-01,written,K,,closed,2026-01-01\n",
      "S-B,Bo,Bell,1982-01-01,,,,,,,,,,,,,,,,,isva,2026-01-01\n");
  auto report = Import(text);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_applied(), 2u) << Reasons(*report);
  ASSERT_THAT(report->rejected(), SizeIs(1));
  EXPECT_EQ(report->rejected(0).row(), 3u);
  EXPECT_THAT(report->rejected(0).reason(), HasSubstr("service closed"));
  EXPECT_TRUE(HasSubject("S-A"));
  EXPECT_TRUE(HasSubject("S-B"));
  EXPECT_FALSE(HasSubject("S-X"));
  EXPECT_EQ(*f_.store->SubjectCount(), 2);
  auto db = sqlite::Database::Open(f_.dir + "/agent.db");
  ASSERT_TRUE(db.ok());
  for (const char* sql :
       {"SELECT count(*) FROM records", "SELECT count(*) FROM consents",
        "SELECT count(*) FROM consent_events"}) {
    auto q = (*db)->Prepare(sql);
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE(q->Next().ok());
    EXPECT_EQ(q->Int(0), 0) << sql;
  }
}

TEST_F(ImportTest, ReimportingTheSameFileChangesNothing) {
  const std::string text = absl::StrCat(
      kHeader, kGoodRow,
      // A consent without an id: recognised by its terms on re-import.
      "S-1,,,,,,,,,,,,vol-c,,support,needs,2026-02-02,verbal,Key worker,,,\n");
  auto first = Import(text);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rows_applied(), 2u) << Reasons(*first);
  EXPECT_EQ(first->consents_recorded(), 2u);
  auto second = Import(text);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->rows_applied(), 2u) << Reasons(*second);
  EXPECT_EQ(second->subjects_created(), 0u);
  EXPECT_EQ(second->subjects_updated(), 0u);
  EXPECT_EQ(second->consents_recorded(), 0u);
  auto consents = f_.store->Consents("S-1");
  ASSERT_TRUE(consents.ok());
  EXPECT_THAT(*consents, SizeIs(2));
  auto tokens = f_.store->TokensOf("S-1");
  auto ids = f_.store->FindByToken((*tokens)[0]);
  auto engagements = f_.store->EngagementsOf((*ids)[0]);
  ASSERT_TRUE(engagements.ok());
  EXPECT_THAT(*engagements, SizeIs(1));
}

TEST_F(ImportTest, ALaterRowInTheSameBatchReplacesTheSubjectsTokens) {
  // Rows 2 and 3 are one batch: the person is created, then her family name
  // and postcode change. Only the tokens of what is held at the end match.
  auto report = Import(absl::StrCat(
      "subject_id,given_name,family_name,date_of_birth,postcode\n",
      "S-1,Amy,Bell,1980-01-01,LS6 2AB\n", "S-2,Bo,Chen,1975-05-05,\n",
      "S-1,Amy,Bell-Shah,1980-01-01,LS7 3CD\n"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_applied(), 3u) << Reasons(*report);
  EXPECT_EQ(report->subjects_created(), 2u);
  EXPECT_EQ(report->subjects_updated(), 1u);
  linkage::IdentifierSet before, after;
  before.given_name = after.given_name = "Amy";
  before.family_name = "Bell";
  after.family_name = "Bell-Shah";
  before.date_of_birth = after.date_of_birth = "1980-01-01";
  before.postcode = "LS6 2AB";
  after.postcode = "LS7 3CD";
  auto old_tokens = linkage::DeriveTokens(*f_.key, before);
  auto new_tokens = linkage::DeriveTokens(*f_.key, after);
  ASSERT_TRUE(old_tokens.ok());
  ASSERT_TRUE(new_tokens.ok());
  auto held = f_.store->TokensOf("S-1");
  ASSERT_TRUE(held.ok());
  ASSERT_THAT(*held, SizeIs(2));
  for (size_t i = 0; i < held->size(); ++i)
    EXPECT_EQ((*held)[i].value(), (*new_tokens)[i].value());
  for (const auto& t : *old_tokens)
    EXPECT_THAT(*f_.store->FindByToken(t), SizeIs(0));
  for (const auto& t : *new_tokens)
    EXPECT_THAT(*f_.store->FindByToken(t), SizeIs(1));
  EXPECT_TRUE(HasSubject("S-2"));
}

TEST_F(ImportTest, RowsParsedIntoReusedStorageAreTheRowsAsWritten) {
  // Eight rows in batches of three: rows after the first batch are parsed
  // into the storage of earlier ones. Alternate rows carry a record, an
  // expiry and an engagement, so anything left over from the row before
  // would show. Consents have no id: the id is derived from every term.
  const std::string header =
      "subject_id,given_name,family_name,date_of_birth,record_id,"
      "record_category,record_provenance,record_text,consent_to_orgs,"
      "consent_purposes,consent_categories,consent_given,consent_method,"
      "consent_recorded_by,consent_expires,engagement_service,"
      "engagement_started\n";
  std::vector<std::string> rows;
  for (int i = 0; i < 8; ++i) {
    const bool odd = i % 2 == 1;
    rows.push_back(absl::StrCat(
        "S-", i, ",Amy,Bell", i, ",1980-01-0", i + 1, ",",
        odd ? absl::StrCat("R-", i, ",needs,fact,Needs.") : ",,,", ",vol-b,",
        "support,needs,2026-02-0", i + 1, ",written,Key worker,",
        odd ? "2027-01-01,isva,2026-01-10" : ",,", "\n"));
  }
  auto all = Import(absl::StrCat(header, absl::StrJoin(rows, "")));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->rows_applied(), 8u) << Reasons(*all);
  EXPECT_EQ(all->records_written(), 4u);
  EXPECT_EQ(all->consents_recorded(), 8u);
  EXPECT_EQ(all->engagements_written(), 4u);
  // Each row on its own (fresh storage) is recognised as already applied:
  // same consent id, so the same terms.
  for (const auto& row : rows) {
    auto one = Import(absl::StrCat(header, row));
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(one->rows_applied(), 1u) << Reasons(*one);
    EXPECT_EQ(one->consents_recorded(), 0u) << row;
    EXPECT_EQ(one->subjects_updated(), 0u) << row;
  }
  for (int i = 0; i < 8; ++i) {
    auto consents = f_.store->Consents(absl::StrCat("S-", i));
    ASSERT_TRUE(consents.ok());
    ASSERT_THAT(*consents, SizeIs(1));
    EXPECT_EQ((*consents)[0].has_expires_at(), i % 2 == 1) << i;
  }
}

TEST_F(ImportTest, EmptyCellsNeverEraseWhatIsHeld) {
  ASSERT_EQ(Import(absl::StrCat(kHeader, kGoodRow))->rows_applied(), 1u);
  // Only a new phone number; name, date of birth and postcode stay.
  auto report = Import(
      "subject_id,given_name,family_name,date_of_birth,postcode,phone\n"
      "S-1,,,,,07700 900999\n");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->subjects_updated(), 1u) << Reasons(*report);
  auto tokens = f_.store->TokensOf("S-1");
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(*tokens, SizeIs(2));
  auto ids = f_.store->FindByToken((*tokens)[0]);
  auto view = f_.store->LoadSubject((*ids)[0], false);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->subject.fields().at("phone"), "07700 900999");
  EXPECT_EQ(view->subject.fields().at("given_name"), "Zoë");
  // A row for a subject not held, with no identity columns, is rejected.
  auto unknown = Import("subject_id,phone\nS-404,07700 900000\n");
  ASSERT_TRUE(unknown.ok());
  ASSERT_THAT(unknown->rejected(), SizeIs(1));
  EXPECT_THAT(unknown->rejected(0).reason(), StartsWith("subject_id:"));
}

TEST_F(ImportTest, JsonLinesRowsAndRejections) {
  const std::string text =
      "{\"subject_id\": \"J-1\", \"given_name\": \"Zoë\", \"family_name\": "
      "\"Ash\", \"date_of_birth\": \"1990-01-01\", \"consent_to_orgs\": "
      "[\"vol-b\"], \"consent_purposes\": [\"support\"], "
      "\"consent_categories\": [\"identity\", \"needs\"], \"consent_given\": "
      "\"2026-02-01T10:30:00Z\", \"consent_method\": \"digital\", "
      "\"consent_recorded_by\": \"Portal\"}\n"
      "\n"
      "{\"subject_id\": \"J-2\", \"nhs_number\": 9434765919}\n"
      "not json at all\n"
      "{\"subject_id\": \"J-3\", \"shoe_size\": \"5\"}\n"
      "{\"subject_id\": \"J-4\", \"nhs_number\": \"943 476 5919\", "
      "\"record_id\": null}";  // no final newline
  for (size_t chunk : {size_t{5}, text.size()}) {
    auto report = Import(text, accord::v1::IMPORT_FORMAT_JSONL, chunk);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->rows_read(), 5u);
    EXPECT_EQ(report->rows_applied(), 2u) << Reasons(*report);
    ASSERT_THAT(report->rejected(), SizeIs(3)) << Reasons(*report);
    EXPECT_EQ(report->rejected(0).row(), 3u);
    EXPECT_THAT(report->rejected(0).reason(), StartsWith("nhs_number:"));
    EXPECT_EQ(report->rejected(1).row(), 4u);
    EXPECT_THAT(report->rejected(1).reason(), HasSubstr("JSON"));
    EXPECT_EQ(report->rejected(2).row(), 5u);
    EXPECT_THAT(report->rejected(2).reason(), StartsWith("shoe_size:"));
  }
  EXPECT_TRUE(HasSubject("J-1"));
  EXPECT_TRUE(HasSubject("J-4"));
  auto consents = f_.store->Consents("J-1");
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(*consents, SizeIs(1));
  EXPECT_EQ((*consents)[0].given_at().seconds(), 1769941800);
  EXPECT_EQ((*consents)[0].method(), accord::v1::CONSENT_METHOD_DIGITAL);
}

TEST_F(ImportTest, ImportedConsentGovernsDisclosure) {
  ASSERT_EQ(Import(absl::StrCat(kHeader, kGoodRow))->rows_applied(), 1u);
  linkage::IdentifierSet ids;
  ids.given_name = "zoe";
  ids.family_name = "obrien smith";
  ids.date_of_birth = "1990-03-07";
  auto tokens = linkage::DeriveTokens(*f_.key, ids);
  ASSERT_TRUE(tokens.ok());
  accord::v1::DiscloseRequest r;
  r.set_request_id("r");
  r.set_requester_org("vol-b");
  r.set_purpose("support");
  r.set_mode(accord::v1::QUERY_MODE_RECORDS);
  for (auto& t : *tokens) *r.add_subjects() = t;
  accord::v1::DecisionRequest d;
  d.set_requester_org("vol-b");
  d.set_holder_org("vol-a");
  d.set_action(accord::v1::ACTION_QUERY);
  d.set_purpose("support");
  *d.mutable_at() = ToProtoTime(f_.clock.Now());
  *r.mutable_decision() = f_.engine->DecideProto(d);
  auto resp = f_.discloser->Disclose(r);
  ASSERT_EQ(resp.status(), accord::v1::HOLDER_STATUS_ANSWERED) << resp.detail();
  EXPECT_EQ(resp.fields().at("date_of_birth"), "1990");
  ASSERT_THAT(resp.records(), SizeIs(1));
  EXPECT_EQ(resp.records(0).category(), accord::v1::DATA_CATEGORY_NEEDS);
}

TEST_F(ImportTest, TextThatCannotBeReadBackOrShownIsRejected) {
  const std::string header =
      "subject_id,given_name,family_name,date_of_birth,address,record_id,"
      "record_category,record_provenance,record_text\n";
  auto report = Import(absl::StrCat(
      header,
      // 2: bytes that are not UTF-8 (a spreadsheet saved as "CSV", not
      // "CSV UTF-8", or worse)
      "S-1,Ann,Ash,1980-01-01,,R-1,needs,fact,\xff\xfe\n",
      // 3: a terminal escape in free text
      "S-2,Bo,Bell,1981-01-01,,R-2,needs,fact,\x1b[2K\rall clear\n",
      // 4: a C1 control character (U+009B, a terminal's CSI)
      "S-3,Cy,Cole,1982-01-01,,R-3,needs,fact,a\xc2\x9b"
      "2Jb\n",
      // 5: a tab in a name (short text)
      "S-4,Di\tDi,Dunn,1983-01-01,,,,,\n",
      // 6: a line break in an identifier
      "\"S-5\nX\",Ed,Eve,1984-01-01,,,,,\n",
      // 7: line breaks and tabs where free text allows them
      "S-6,Fi,Fox,1985-01-01,\"1 High St\nLeeds\",R-6,needs,fact,"
      "\"First line\n\tindented\r\nthird\"\n",
      // 8: a carriage return alone (it moves a terminal's cursor back)
      "S-7,Gus,Gee,1986-01-01,,R-7,needs,fact,\"safe\rEVIL\"\n"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_applied(), 1u) << Reasons(*report);
  const std::vector<std::pair<uint64_t, std::string>> want = {
      {2, "record_text: is not valid UTF-8"},
      {3, "record_text: contains a control character"},
      {4, "record_text: contains a control character"},
      {5, "given_name: contains a control character"},
      {6, "subject_id: contains a control character"},
      {8, "record_text: contains a control character"}};
  ASSERT_THAT(report->rejected(), SizeIs(want.size())) << Reasons(*report);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(report->rejected(i).row(), want[i].first) << Reasons(*report);
    EXPECT_THAT(report->rejected(i).reason(), StartsWith(want[i].second))
        << Reasons(*report);
  }
  for (const char* id : {"S-1", "S-2", "S-3", "S-4", "S-7"})
    EXPECT_FALSE(HasSubject(id)) << id;
  // What was accepted reads back whole.
  auto tokens = f_.store->TokensOf("S-6");
  ASSERT_TRUE(tokens.ok());
  auto ids = f_.store->FindByToken((*tokens)[0]);
  ASSERT_TRUE(ids.ok());
  auto view = f_.store->LoadSubject((*ids)[0], true);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_THAT(view->skipped, SizeIs(0));
  EXPECT_EQ(view->subject.fields().at("address"), "1 High St\nLeeds");
  ASSERT_THAT(view->records, SizeIs(1));
  EXPECT_EQ(view->records[0].text(), "First line\n\tindented\r\nthird");

  // JSON Lines, where escapes are easy to write.
  auto jsonl = Import(
      "{\"subject_id\": \"J-1\", \"given_name\": \"Ann\", \"family_name\": "
      "\"Ash\", \"date_of_birth\": \"1980-01-01\", \"record_id\": \"JR-1\", "
      "\"record_category\": \"needs\", \"record_provenance\": \"fact\", "
      "\"record_text\": \"\\u001b]0;owned\\u0007\"}\n"
      "{\"subject_id\": \"J-2\\u0000\", \"nhs_number\": \"943 476 5919\"}\n"
      "{\"subject_id\": \"J-3\", \"nhs_number\": \"943 476 5919\", "
      "\"family_name\": \"\\u009b\"}\n"
      "{\"subject_id\": \"J-4\", \"nhs_number\": \"943 476 5919\"}\n"
      "{\"subject_\\u001bid\": \"J-5\"}\n",
      accord::v1::IMPORT_FORMAT_JSONL);
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  EXPECT_EQ(jsonl->rows_applied(), 1u) << Reasons(*jsonl);
  ASSERT_THAT(jsonl->rejected(), SizeIs(4)) << Reasons(*jsonl);
  EXPECT_THAT(jsonl->rejected(0).reason(),
              StartsWith("record_text: contains a control character"));
  EXPECT_THAT(jsonl->rejected(1).reason(),
              StartsWith("subject_id: contains a control character"));
  EXPECT_THAT(jsonl->rejected(2).reason(),
              StartsWith("family_name: contains a control character"));
  // A key that is not printable is not quoted back.
  EXPECT_THAT(jsonl->rejected(3).reason(),
              StartsWith("a key contains a control character"));
  EXPECT_TRUE(HasSubject("J-4"));
  EXPECT_FALSE(HasSubject("J-1"));
  // Reasons never carry the bytes at fault.
  for (const auto& r : jsonl->rejected()) {
    EXPECT_EQ(r.reason().find('\x1b'), std::string::npos);
  }
}

TEST_F(ImportTest, ASecondIdForAPersonAlreadyHeldIsRejectedNamingTheFirst) {
  ASSERT_EQ(Import(absl::StrCat(kHeader, kGoodRow))->rows_applied(), 1u);
  // Batches of three rows: rows 2-4 are one batch, 5 the next.
  auto report = Import(absl::StrCat(
      "subject_id,given_name,family_name,date_of_birth,nhs_number\n",
      // 2: S-1 (held before this file) written another way
      "S-1b,ZOE,OBRIEN SMITH,1990-03-07,\n",
      // 3: a new person, with her NHS number
      "N-1,Amy,Bell,1980-01-01,943 476 5919\n",
      // 4: the same NHS number, in the same batch, under another id
      "N-2,Amelia,Bell,1980-01-01,9434765919\n",
      // 5: the same name and birthday as row 3, in a later batch
      "N-3,amy,bell,01/01/1980,\n"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_applied(), 1u) << Reasons(*report);
  ASSERT_THAT(report->rejected(), SizeIs(3)) << Reasons(*report);
  const std::vector<std::pair<uint64_t, std::string>> want = {
      {2, "same name and date of birth of subject 'S-1'"},
      {4, "same NHS number of subject 'N-1'"},
      {5, "same name and date of birth of subject 'N-1'"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(report->rejected(i).row(), want[i].first) << Reasons(*report);
    EXPECT_THAT(report->rejected(i).reason(), StartsWith("subject_id:"));
    EXPECT_THAT(report->rejected(i).reason(), HasSubstr(want[i].second))
        << Reasons(*report);
  }
  for (const char* id : {"S-1b", "N-2", "N-3"})
    EXPECT_FALSE(HasSubject(id)) << id;
  EXPECT_TRUE(HasSubject("N-1"));
  // Re-importing the person's own row is not a duplicate of herself.
  auto again = Import(absl::StrCat(kHeader, kGoodRow));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rows_applied(), 1u) << Reasons(*again);
}

// ---------------------------------------------------------------------------
// The monitoring dataset (docs/STATISTICS.md)

constexpr char kMonitoringHeader[] =
    "subject_id,given_name,family_name,date_of_birth,engagement_service,"
    "engagement_started,engagement_referral_source,engagement_ethnicity,"
    "engagement_age_band,engagement_disability,engagement_sex,"
    "engagement_outcome_instrument,engagement_outcome_before,"
    "engagement_outcome_before_date,engagement_outcome_after,"
    "engagement_outcome_after_date\n";

// Everything the monitoring columns give, as stored.
void ExpectMonitoring(const accord::v1::Engagement& e) {
  EXPECT_EQ(e.service(), "isva");
  EXPECT_EQ(e.referral_source(), accord::v1::REFERRAL_SOURCE_POLICE);
  EXPECT_EQ(e.monitoring().ethnicity(), accord::v1::ETHNICITY_WHITE_BRITISH);
  EXPECT_EQ(e.monitoring().age_band(), accord::v1::AGE_BAND_25_34);
  EXPECT_EQ(e.monitoring().disability(), accord::v1::DISABILITY_NOT_STATED);
  EXPECT_EQ(e.monitoring().sex(), accord::v1::SEX_FEMALE);
  ASSERT_THAT(e.outcomes(), SizeIs(2));
  EXPECT_EQ(e.outcomes(0).instrument(), accord::v1::OUTCOME_INSTRUMENT_WEMWBS);
  EXPECT_EQ(e.outcomes(0).stage(), accord::v1::OUTCOME_STAGE_BEFORE);
  EXPECT_EQ(e.outcomes(0).score(), 31.5);
  EXPECT_EQ(e.outcomes(0).measured_at().seconds(), 1768003200);  // 2026-01-10
  EXPECT_EQ(e.outcomes(1).instrument(), accord::v1::OUTCOME_INSTRUMENT_WEMWBS);
  EXPECT_EQ(e.outcomes(1).stage(), accord::v1::OUTCOME_STAGE_AFTER);
  EXPECT_EQ(e.outcomes(1).score(), 48);
  EXPECT_EQ(e.outcomes(1).measured_at().seconds(), 1775001600);  // 2026-04-01
}

TEST_F(ImportTest, MonitoringColumnsAreStoredInTheEngagement) {
  // The codes as people write them: labels, hyphens, any case, the prefix.
  auto csv = Import(absl::StrCat(
      kMonitoringHeader,
      "M-1,Ann,Ash,1995-06-01,isva,2026-01-10,Police,White British,25-34,"
      "not_stated,FEMALE,WEMWBS,31.5,10/01/2026,48,2026-04-01\n"));
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(csv->rows_applied(), 1u) << Reasons(*csv);
  EXPECT_EQ(csv->engagements_written(), 1u);
  auto stored = EngagementsOf("M-1");
  ASSERT_THAT(stored, SizeIs(1));
  ExpectMonitoring(stored[0]);

  auto jsonl = Import(
      "{\"subject_id\": \"M-2\", \"given_name\": \"Bo\", "
      "\"family_name\": \"Bell\", \"date_of_birth\": \"1996-07-02\", "
      "\"engagement_service\": \"isva\", \"engagement_started\": "
      "\"2026-01-10\", \"engagement_referral_source\": "
      "\"referral_source_police\", \"engagement_ethnicity\": "
      "\"white_british\", \"engagement_age_band\": \"25_34\", "
      "\"engagement_disability\": \"Not Stated\", \"engagement_sex\": "
      "\"female\", \"engagement_outcome_instrument\": \"wemwbs\", "
      "\"engagement_outcome_before\": \"31.5\", "
      "\"engagement_outcome_before_date\": \"2026-01-10\", "
      "\"engagement_outcome_after\": \"48\", "
      "\"engagement_outcome_after_date\": \"2026-04-01T00:00:00Z\"}\n",
      accord::v1::IMPORT_FORMAT_JSONL);
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  EXPECT_EQ(jsonl->rows_applied(), 1u) << Reasons(*jsonl);
  stored = EngagementsOf("M-2");
  ASSERT_THAT(stored, SizeIs(1));
  ExpectMonitoring(stored[0]);
}

TEST_F(ImportTest, BadMonitoringCellsAreRejectedWithRowNumberAndColumn) {
  auto report = Import(absl::StrCat(
      kMonitoringHeader,
      // 2: good, before only, no dates
      "B-1,Ann,Ash,1990-01-01,isva,2026-01-10,,,,,,swemwbs,20,,,\n",
      // 3: an ethnicity that is not a code of the list
      "B-2,Bo,Bell,1990-01-02,isva,2026-01-10,,martian,,,,,,,,\n",
      // 4: a score outside the instrument's range
      "B-3,Cy,Cole,1990-01-03,isva,2026-01-10,,,,,,wemwbs,30,,71.25,\n",
      // 5: a score without an instrument
      "B-4,Di,Dunn,1990-01-04,isva,2026-01-10,,,,,,,30,,,\n",
      // 6: the after measure dated before the before measure
      "B-5,Ed,Eve,1990-01-05,isva,2026-01-10,,,,,,wemwbs,30,2026-03-01,40,"
      "2026-02-01\n",
      // 7: a score that is not a number
      "B-6,Fi,Fox,1990-01-06,isva,2026-01-10,,,,,,wemwbs,4O,,,\n",
      // 8: monitoring data without the engagement it belongs to
      "B-7,Gus,Gee,1990-01-07,,,,,,,female,,,,,\n"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->rows_read(), 7u);
  EXPECT_EQ(report->rows_applied(), 1u) << Reasons(*report);
  ASSERT_THAT(report->rejected(), SizeIs(6)) << Reasons(*report);
  const std::vector<std::pair<uint64_t, std::string>> want = {
      {3,
       "engagement_ethnicity: not a code of the ethnicity code list; the "
       "codes are: asian_bangladeshi,"},
      {4, "engagement_outcome_after: a wemwbs score lies between 14 and 70"},
      {5,
       "engagement_outcome_before: a score needs "
       "engagement_outcome_instrument"},
      {6,
       "engagement_outcome_after_date: the after measure of wemwbs is dated "
       "before its before measure"},
      {7, "engagement_outcome_before: not a number"},
      {8, "engagement_service: required when a row has an engagement"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(report->rejected(i).row(), want[i].first) << Reasons(*report);
    EXPECT_THAT(report->rejected(i).reason(), StartsWith(want[i].second))
        << Reasons(*report);
  }
  // Reasons never repeat a cell's value.
  for (const auto& r : report->rejected()) {
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("martian")));
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("71.25")));
    EXPECT_THAT(r.reason(), ::testing::Not(HasSubstr("4O")));
  }
  // Nothing of a rejected row is written, not even its subject.
  ASSERT_THAT(EngagementsOf("B-1"), SizeIs(1));
  for (const char* id : {"B-2", "B-3", "B-4", "B-5", "B-6", "B-7"})
    EXPECT_FALSE(HasSubject(id)) << id;
}

// The fuzz target's checks (no crash, no row lost, chunking does not matter)
// over its corpus and deterministic single-byte variants of it.
TEST(ImportFuzzCorpus, RunsClean) {
  const std::string dir = absl::StrCat(
      std::getenv("ACCORD_SOURCE_DIR") ? std::getenv("ACCORD_SOURCE_DIR") : ".",
      "/agent/fuzz_corpus");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    ++files;
    for (size_t i = 0; i < data.size(); ++i) {
      for (char c : {'"', '\n', ',', '\0', '{', ';'}) {
        std::string v = data;
        v[i] = c;
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(v.data()),
                               v.size());
      }
    }
  }
  EXPECT_GE(files, 2);
}

TEST_F(ImportTest, ColumnsIncludeTheWholeFieldCatalogue) {
  const auto columns = ImportColumns();
  for (const auto& f : policy::AllFields()) {
    EXPECT_NE(std::find(columns.begin(), columns.end(), f.name), columns.end())
        << f.name;
  }
}

}  // namespace
}  // namespace accord::agent
