// The text the agent accepts: UTF-8 exactly as protobuf reads it back, no
// control characters but line breaks and tabs in free text, and requests
// checked field by field.

#include "agent/input_text.h"

#include <string>

#include "accord/v1/agent.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

bool ReadsBack(const std::string& text) {
  accord::v1::Record r;
  r.set_text(text);
  accord::v1::Record back;
  return back.ParseFromString(r.SerializeAsString());
}

TEST(InputTextTest, ValidUtf8IsExactlyWhatProtobufReadsBack) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"plain", true},
      {"Zo\xc3\xab O'Brien-Smith", true},  // Zoë
      {"\xe2\x82\xac 20", true},           // €
      {"\xf0\x9f\x8c\xbb", true},          // an emoji
      {"\xff\xfe", false},                 // not UTF-8 at all
      {"caf\xc3", false},                  // cut short
      {"\xc0\xaf", false},                 // overlong '/'
      {"\xed\xa0\x80", false},             // a surrogate
      {"\xf4\x90\x80\x80", false},         // above U+10FFFF
      {"\xe9t\xe9", false},                // Windows-1252 "été"
  };
  for (const auto& [text, valid] : cases) {
    const char* why = TextProblem(text, TextKind::kFree);
    EXPECT_EQ(why == nullptr, valid) << text;
    if (!valid) {
      EXPECT_STREQ(why, "is not valid UTF-8") << text;
    }
    EXPECT_EQ(ReadsBack(text), valid) << text;
  }
}

TEST(InputTextTest, ControlCharactersAndWhereLineBreaksMayGo) {
  EXPECT_EQ(TextProblem("line one\nline two\r\n\tindented", TextKind::kFree),
            nullptr);
  for (const std::string& text :
       {std::string("a\x1b[2Jb"), std::string("over\rwrite"),
        std::string("bell\x07"), std::string("del\x7f"),
        std::string("nul\0x", 5),
        std::string("csi\xc2\x9b"
                    "2J"),
        std::string("nel\xc2\x85")}) {
    const char* free = TextProblem(text, TextKind::kFree);
    ASSERT_NE(free, nullptr) << text;
    EXPECT_THAT(free, StartsWith("contains a control character"));
    EXPECT_NE(TextProblem(text, TextKind::kShort), nullptr) << text;
  }
  for (const char* text : {"a\tb", "a\nb", "a\r\nb"}) {
    const char* why = TextProblem(text, TextKind::kShort);
    ASSERT_NE(why, nullptr) << text;
    EXPECT_THAT(why, HasSubstr("none is allowed here"));
  }
  // U+00A0 and the rest of Latin-1 are text, not controls.
  EXPECT_EQ(TextProblem("\xc2\xa0\xc2\xa3", TextKind::kShort), nullptr);
}

TEST(InputTextTest, RequestsAreCheckedFieldByFieldWithFreeTextWhereListed) {
  accord::v1::UpsertSubjectRequest subject;
  subject.mutable_subject()->set_local_id("S-1");
  auto& fields = *subject.mutable_subject()->mutable_fields();
  fields["address"] = "1 High St\nLeeds";
  fields["safe_contact"] = "Text first;\tnever call";
  EXPECT_TRUE(CheckRequestText(subject).ok());
  // (mutable_fields() again: a map changed through an old reference after
  // reflection has read it is not seen by reflection.)
  (*subject.mutable_subject()->mutable_fields())["given_name"] = "Zo\ne";
  auto s = CheckRequestText(subject);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "field subject.fields.given_name contains a control character "
            "(none is allowed here: no line breaks, tabs or escapes)");
  subject.mutable_subject()->mutable_fields()->erase("given_name");
  (*subject.mutable_subject()->mutable_fields())["bad\x1bkey"] = "x";
  EXPECT_THAT(std::string(CheckRequestText(subject).message()),
              StartsWith("field subject.fields has a key that contains"));

  accord::v1::LocalSendReferralRequest referral;
  referral.set_subject_local_id("S-1");
  referral.mutable_content()->set_case_summary("She said:\n\t\"...\"");
  (*referral.mutable_content()->mutable_contact_details())["address"] =
      "Flat 2\n3 Low Rd";
  referral.mutable_content()->add_needs("housing");
  EXPECT_TRUE(CheckRequestText(referral).ok());
  referral.mutable_content()->add_needs("legal\n");
  EXPECT_THAT(std::string(CheckRequestText(referral).message()),
              StartsWith("field content.needs[1] contains a control"));

  accord::v1::UpdateReferralRequest update;
  update.set_referral_id("ref-1");
  update.mutable_status()->set_reason("Declined:\nno capacity");
  EXPECT_TRUE(CheckRequestText(update).ok());
  update.set_referral_id("ref-1\t");
  EXPECT_THAT(std::string(CheckRequestText(update).message()),
              StartsWith("field referral_id contains a control"));
}

}  // namespace
}  // namespace accord::agent
