#include "audit/entry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::audit {
namespace {

using accord::v1::AuditEntry;
using ::testing::HasSubstr;

// Every field set to a non-default value.
AuditEntry FullEntry() {
  AuditEntry e;
  e.set_seq(1234);
  *e.mutable_time() = ToProtoTime(absl::FromUnixNanos(1714550000123456789));
  e.set_request_id("req-1");
  e.set_caller("spiffe://p/org/police-north");
  e.set_caller_org("police-north");
  e.mutable_actor()->set_user_id("pc 123");
  e.mutable_actor()->set_role("officer, \"duty\"");
  e.set_method("Query");
  e.set_action(accord::v1::ACTION_QUERY);
  e.set_purpose("safeguarding\nadult");
  e.set_lawful_basis(static_cast<accord::v1::LawfulBasis>(1));
  e.set_agreement_id("isa-1");
  e.set_agreement_version(3);
  e.set_rule_id("r2");
  e.set_holder("womens-centre");
  auto* t = e.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value(std::string(64, 'a'));
  e.add_subjects()->set_value(std::string(64, 'b'));
  e.add_fields_released("dob");
  e.add_fields_released("postcode");
  e.set_record_count(2);
  e.set_decision(accord::v1::AUDIT_DECISION_PARTIAL);
  e.set_deny_reason("=cmd|' /C calc'!A0");
  e.set_no_consent_justification("risk of serious harm — Ünïcode");
  e.mutable_no_consent_approver()->set_user_id("sgt 9");
  e.set_flag_for_review(true);
  e.set_reviews_seq(7);
  e.set_review_note("tab\there");
  e.set_referral_id("ref-5");
  e.set_detail("\x01 control");
  e.set_agent_org("womens-centre");
  e.add_record_ids("WC-R-1");
  e.add_record_ids("WC-R-2");
  e.set_consent_id("c-7");
  e.set_refusals_summarised(95);
  e.mutable_summarised_since()->set_seconds(1714549999);
  e.add_over_shared("phone");
  e.add_over_shared("record:DATA_CATEGORY_SEX_LIFE");
  return e;
}

TEST(EntryTest, LeafIsCanonicalAndStable) {
  const AuditEntry e = FullEntry();
  const std::string leaf = EncodeLeaf(e);
  EXPECT_EQ(leaf[0], kLeafVersion);
  EXPECT_EQ(leaf, EncodeLeaf(e));
  auto back = DecodeLeaf(leaf);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(EncodeLeaf(*back), leaf);
  // Pinned so an accidental encoding change (which would break every
  // existing log's hashes) fails here.
  AuditEntry small;
  small.set_seq(5);
  small.set_method("Query");
  small.set_decision(accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(HexEncode(EncodeLeaf(small)),
            "010805"
            "3a055175657279"
            "9001"
            "02");

  EXPECT_FALSE(DecodeLeaf("").ok());
  EXPECT_THAT(
      DecodeLeaf(std::string("\x02", 1) + leaf.substr(1)).status().message(),
      HasSubstr("version"));
  EXPECT_FALSE(DecodeLeaf(leaf.substr(0, leaf.size() - 3)).ok());
  // Same entry, fields in another order: not canonical.
  EXPECT_THAT(DecodeLeaf(std::string("\x01") + "\x3a\x05Query\x08\x05")
                  .status()
                  .message(),
              HasSubstr("canonical"));
}

TEST(EntryTest, LeafFromBodyEqualsTheWholeEncoding) {
  // The log encodes the body on the appending thread and adds seq and time
  // on its writer: the bytes must be exactly EncodeLeaf's.
  for (uint64_t seq : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128},
                       uint64_t{1} << 40, ~uint64_t{0}}) {
    for (int64_t nanos :
         {int64_t{0}, int64_t{1714550000123456789},
          int64_t{1714550000000000000}, int64_t{999}, int64_t{-1500000001}}) {
      AuditEntry e = FullEntry();
      e.clear_seq();
      e.clear_time();
      const std::string body = EncodeLeafBody(e);
      e.set_seq(seq);
      *e.mutable_time() = ToProtoTime(absl::FromUnixNanos(nanos));
      std::string leaf;
      AppendLeaf(seq, e.time(), body, &leaf);
      EXPECT_EQ(HexEncode(leaf), HexEncode(EncodeLeaf(e)))
          << seq << " " << nanos;
      EXPECT_TRUE(DecodeLeaf(leaf).ok());
    }
  }
}

TEST(EntryTest, LeafBodyUtf8CheckAgreesWithDecodeLeaf) {
  const std::vector<std::string> texts = {
      "plain",
      "Ünïcode — ok",
      "\xf0\x9f\x98\x80",
      std::string("\xc3\x28"),          // bad continuation
      std::string("\xc0\xaf"),          // overlong
      std::string("\xed\xa0\x80"),      // surrogate
      std::string("\xf4\x90\x80\x80"),  // above U+10FFFF
      std::string("\xe2\x82"),          // truncated
      std::string("\xff")};
  for (const std::string& t : texts) {
    for (int where = 0; where < 3; ++where) {
      AuditEntry e = FullEntry();
      e.clear_seq();
      e.clear_time();
      if (where == 0) e.set_detail(t);
      if (where == 1) e.mutable_actor()->set_role(t);       // nested message
      if (where == 2) e.mutable_subjects(1)->set_value(t);  // repeated
      std::string leaf;
      const std::string body = EncodeLeafBody(e);
      AppendLeaf(9, ToProtoTime(absl::FromUnixSeconds(1)), body, &leaf);
      EXPECT_EQ(LeafBodyIsUtf8(body), DecodeLeaf(leaf).ok())
          << HexEncode(t) << " at " << where;
    }
  }
  EXPECT_TRUE(LeafBodyIsUtf8(EncodeLeafBody(FullEntry())));
  EXPECT_FALSE(
      LeafBodyIsUtf8("\x0a\x05"
                     "ab"));  // length past the end
}

TEST(EntryTest, JsonLineRoundTripsEveryField) {
  const AuditEntry e = FullEntry();
  const std::string leaf = EncodeLeaf(e);
  const std::string line = JsonLine(e, leaf);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // newlines inside are escaped
  auto row = ParseJsonLine(absl::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->leaf, leaf);
  EXPECT_EQ(EncodeLeaf(row->entry), leaf);
  // Every field of AuditEntry appears in the row under its proto name.
  const auto* d = AuditEntry::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    EXPECT_THAT(line,
                HasSubstr(absl::StrCat("\"", d->field(i)->name(), "\":")));
  }
  // Unset messages round-trip as null.
  AuditEntry bare;
  bare.set_seq(1);
  const std::string bare_leaf = EncodeLeaf(bare);
  auto bare_row = ParseJsonLine(JsonLine(bare, bare_leaf));
  ASSERT_TRUE(bare_row.ok());
  EXPECT_EQ(EncodeLeaf(bare_row->entry), bare_leaf);
}

// The fields only an agent's log sets are left out of rows that do not set
// them: the gateway's rows are what they were before those fields existed.
TEST(EntryTest, JsonLineOmitsUnsetAgentAndSummaryFields) {
  AuditEntry e = FullEntry();
  e.clear_agent_org();
  e.clear_record_ids();
  e.clear_consent_id();
  e.clear_refusals_summarised();
  e.clear_summarised_since();
  e.clear_over_shared();
  const std::string line = JsonLine(e, EncodeLeaf(e));
  EXPECT_THAT(line, HasSubstr(R"("detail":"\u0001 control","leaf":")"));
  auto row = ParseJsonLine(absl::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(EncodeLeaf(row->entry), EncodeLeaf(e));
}

TEST(EntryTest, ParseJsonLineIsStrict) {
  EXPECT_THAT(
      ParseJsonLine(R"({"seq":1,"bogus":2,"leaf":""})").status().message(),
      HasSubstr("unknown field \"bogus\""));
  EXPECT_THAT(
      ParseJsonLine(R"({"seq":1,"seq":2,"leaf":""})").status().message(),
      HasSubstr("repeated"));
  EXPECT_THAT(ParseJsonLine(R"({"seq":1})").status().message(),
              HasSubstr("leaf"));
  EXPECT_FALSE(ParseJsonLine(R"({"seq":-1,"leaf":""})").ok());
  EXPECT_FALSE(ParseJsonLine(R"({"seq":1,"leaf":""} x)").ok());
  EXPECT_FALSE(ParseJsonLine(R"({"seq":1,"time":"yesterday","leaf":""})").ok());
  EXPECT_FALSE(
      ParseJsonLine(R"({"seq":1,"action":"ACTION_NOPE","leaf":""})").ok());
  EXPECT_TRUE(ParseJsonLine(R"({"seq":1,"action":1,"leaf":"AQ=="})").ok());
}

TEST(EntryTest, DifferingFieldsNamesTheChange) {
  AuditEntry a = FullEntry(), b = FullEntry();
  b.set_purpose("other");
  b.mutable_actor()->set_role("x");
  EXPECT_THAT(DifferingFields(a, b),
              ::testing::ElementsAre("actor", "purpose"));
}

TEST(EntryTest, CsvQuotesPerRfc4180AndDefusesFormulas) {
  const AuditEntry e = FullEntry();
  const std::string header = CsvHeader();
  const std::string line = CsvLine(e, EncodeLeaf(e));
  EXPECT_EQ(header.substr(header.size() - 2), "\r\n");
  EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
  EXPECT_THAT(line, HasSubstr(",\"officer, \"\"duty\"\"\","));
  // A line break is shown as \n: every row is one line of text.
  EXPECT_THAT(line, HasSubstr(",safeguarding\\nadult,"));
  EXPECT_THAT(line, HasSubstr(",'=cmd|' /C calc'!A0,"));
  EXPECT_THAT(line, HasSubstr("TOKEN_KIND_NAME_DOB:aaaa"));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(header, ',')).size(), 35u);
}

// A refused request's purpose is kept as sent; in the CSV a reader sees it
// escaped, and the row cannot pass for an allowed entry.
TEST(EntryTest, CsvEscapesTerminalControlsAndStillDefusesFormulas) {
  AuditEntry e = FullEntry();
  e.set_decision(accord::v1::AUDIT_DECISION_DENY);
  e.set_purpose("\x1b[2K\r#0 allow AuditSearch by auditor");
  e.set_deny_reason("=HYPERLINK(\"http://x\")\x1b]8;;");
  const std::string line = CsvLine(e, EncodeLeaf(e));
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\r'), line.size() - 2);  // only the row's CRLF
  EXPECT_THAT(line, HasSubstr(",\\x1b[2K\\r#0 allow AuditSearch by auditor,"));
  EXPECT_THAT(line, HasSubstr(",\"'=HYPERLINK(\"\"http://x\"\")\\x1b]8;;\","));
  // The leaf still holds the exact entry.
  auto fields = std::vector<std::string>(absl::StrSplit(line, ','));
  std::string leaf;
  ASSERT_TRUE(
      absl::Base64Unescape(absl::StripSuffix(fields.back(), "\r\n"), &leaf));
  auto back = DecodeLeaf(leaf);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->purpose(), e.purpose());
}

TEST(EntryTest, SubjectAccessReportIsReadable) {
  const AuditEntry e = FullEntry();
  const std::string report = SubjectAccessReport({e});
  EXPECT_THAT(report, HasSubstr("police-north (user pc 123"));
  EXPECT_THAT(report, HasSubstr("Agreement isa-1 v3"));
  EXPECT_THAT(report,
              HasSubstr("Shared without consent: risk of serious harm"));
}

TEST(EntryTest, SubjectAccessReportEscapesWhatCallersSent) {
  AuditEntry e = FullEntry();
  e.set_purpose("x\x1b[1A\x1b[2K");
  const std::string report = SubjectAccessReport({e});
  EXPECT_EQ(report.find('\x1b'), std::string::npos);
  EXPECT_THAT(report, HasSubstr("for purpose \"x\\x1b[1A\\x1b[2K\""));
}

TEST(EntryTest, TimestampsRoundTrip) {
  for (int64_t nanos :
       {int64_t{0}, int64_t{1714550000000000000}, int64_t{1714550000000000001},
        int64_t{1714550000120000000}}) {
    const auto ts = ToProtoTime(absl::FromUnixNanos(nanos));
    auto back = ParseTimestamp(FormatTimestamp(ts));
    ASSERT_TRUE(back.ok()) << FormatTimestamp(ts);
    EXPECT_EQ(back->seconds(), ts.seconds());
    EXPECT_EQ(back->nanos(), ts.nanos());
  }
  EXPECT_EQ(FormatTimestamp(ToProtoTime(absl::FromUnixMillis(1714550000250))),
            "2024-05-01T07:53:20.25Z");
}

}  // namespace
}  // namespace accord::audit
