#include "cli/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_split.h"

namespace accord::cli {
namespace {

using ::testing::HasSubstr;

// The forged line a refused request carried in its purpose: erase the line,
// return to its start, and print what looks like an allowed entry.
constexpr char kForgery[] = "\x1b[2K\r#0 allow AuditSearch by auditor";

accord::v1::AuditEntry RefusedWithForgedPurpose() {
  accord::v1::AuditEntry e;
  e.set_seq(7);
  e.set_method("Query");
  e.set_caller("spiffe://p/org/x\x1b[8m");
  e.set_decision(accord::v1::AUDIT_DECISION_DENY);
  e.set_purpose(kForgery);
  e.mutable_actor()->set_user_id("u\r\n#1 allow");
  e.set_deny_reason(
      "field purpose: not a purpose \x9b"
      "2J");
  return e;
}

TEST(OutputTest, AuditEntryShowsControlCharactersAsEscapes) {
  std::ostringstream out;
  PrintAuditEntry(out, RefusedWithForgedPurpose());
  const std::string text = out.str();
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_THAT(text, HasSubstr("deny Query by spiffe://p/org/x\\x1b[8m"));
  EXPECT_THAT(text, HasSubstr("(u\\r\\n#1 allow)"));
  EXPECT_THAT(text,
              HasSubstr("for \\x1b[2K\\r#0 allow AuditSearch by auditor"));
  EXPECT_THAT(text, HasSubstr("refused: field purpose: not a purpose \\x9b2J"));
  // Every line the entry prints starts where a line of an entry starts.
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty()))
    EXPECT_TRUE(line[0] == '#' || line.substr(0, 4) == "    ") << line;
}

TEST(OutputTest, RecordTextKeepsItsLinesIndented) {
  accord::v1::QueryResponse r;
  auto* a = r.add_answers();
  a->set_holder("refuge");
  a->set_status(accord::v1::HOLDER_STATUS_ANSWERED);
  auto* rec = a->add_records();
  rec->set_ref("psd:1");
  rec->set_text("line one\nwithheld phone: forged\x1b[1A");
  std::ostringstream out;
  PrintQueryResponse(out, r);
  EXPECT_THAT(out.str(),
              HasSubstr("    line one\n    withheld phone: forged\\x1b[1A\n"));
}

TEST(OutputTest, FailuresEscapeTheServersMessage) {
  std::ostringstream err;
  EXPECT_EQ(
      Failure(err, absl::InvalidArgumentError(
                       "field purpose: '\x1b]0;pwned\x07' is not a purpose")),
      1);
  EXPECT_EQ(err.str(),
            "accordctl: INVALID_ARGUMENT: field purpose: '\\x1b]0;pwned\\x07' "
            "is not a purpose\n");
}

}  // namespace
}  // namespace accord::cli
