#include "runtime/textproto.h"

#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.pb.h"
#include "accord/v1/policy.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

TEST(TextProtoTest, MissingRequiredFieldNamesFileLineAndField) {
  accord::v1::Partnership p;
  const auto s =
      ParseTextProto(R"pb(
                       id: "northdale"
                       name: "Northdale"
                       organisations {
                         id: "police"
                         kind: ORG_KIND_POLICE
                         contact { name: "Desk" }
                       }
                       purposes { id: "safeguarding" description: "x" }
                     )pb",
                     "partnership.textproto", &p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  // organisations[0].name is missing; the organisation opens on line 4.
  EXPECT_THAT(s.message(), HasSubstr("partnership.textproto:4:"));
  EXPECT_THAT(s.message(), HasSubstr("organisations[0].name is required"));
}

TEST(TextProtoTest, UnknownEnumNameIsAParseErrorWithLine) {
  accord::v1::Organisation o;
  const auto s = ParseTextProto(
      "id: \"a\"\nname: \"b\"\nkind: ORG_KIND_PIRATE\n", "org.txt", &o);
  EXPECT_THAT(s.message(), HasSubstr("org.txt:3:"));
  EXPECT_THAT(s.message(), HasSubstr("ORG_KIND_PIRATE"));
}

TEST(TextProtoTest, UnspecifiedEnumIsRefused) {
  accord::v1::Organisation o;
  const auto s = ParseTextProto(
      "id: \"a\"\nname: \"b\"\ncontact { name: \"c\" }\n", "org.txt", &o);
  EXPECT_THAT(s.message(), HasSubstr("field kind must be set"));
}

TEST(TextProtoTest, ValidateMessageChecksLengthsAndCounts) {
  accord::v1::QueryRequest q;
  q.set_purpose(std::string(65, 'p'));
  q.set_mode(accord::v1::QUERY_MODE_RECORDS);
  for (int i = 0; i < 9; ++i) {
    auto* t = q.add_subjects();
    t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
    t->set_value("ab");
  }
  const auto s = ValidateMessage(q);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("field purpose is 65 bytes long; at most 64"));
  EXPECT_THAT(s.message(),
              HasSubstr("field subjects has 9 elements; at most 8"));
}

TEST(TextProtoTest, UnknownNumericEnumValueIsRefused) {
  accord::v1::QueryRequest q;
  q.set_purpose("p");
  q.set_mode(static_cast<accord::v1::QueryMode>(77));
  auto* t = q.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value("ab");
  EXPECT_THAT(ValidateMessage(q).message(),
              HasSubstr("mode has unknown value 77"));
}

accord::v1::QueryRequest ValidQuery() {
  accord::v1::QueryRequest q;
  q.set_purpose("safeguarding-adults");
  q.set_mode(accord::v1::QUERY_MODE_RECORDS);
  auto* t = q.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value(std::string(64, 'a'));
  return q;
}

TEST(TextProtoTest, ValidQueryPasses) {
  EXPECT_TRUE(ValidateMessage(ValidQuery()).ok());
}

TEST(TextProtoTest, SubjectTokenFormatIsChecked) {
  auto q = ValidQuery();
  q.mutable_subjects(0)->set_value(std::string(63, 'a') + "G");
  const auto s = ValidateMessage(q);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("field subjects[0].value must be 64 "
                                     "lower-case hex characters"));
}

TEST(TextProtoTest, InvalidUtf8IsRefusedWithoutQuotingTheValue) {
  for (const std::string& bad :
       {std::string("ab\xff"), std::string("\xc0\xaf"),  // overlong '/'
        std::string("\xed\xa0\x80"),                     // surrogate
        std::string("\xe2\x82"),                         // truncated
        std::string("\xf4\x90\x80\x80")}) {              // > U+10FFFF
    accord::v1::Actor actor;
    actor.set_user_id(bad);
    const auto s = ValidateMessage(actor);
    EXPECT_THAT(s.message(), HasSubstr("field user_id is not valid UTF-8"));
    EXPECT_THAT(s.message(), ::testing::Not(HasSubstr(bad)));
  }
  accord::v1::Actor ok;
  ok.set_user_id("Siobh\xc3\xa1n \xe2\x80\x94 \xf0\x9f\x99\x82");
  EXPECT_TRUE(ValidateMessage(ok).ok());
}

TEST(TextProtoTest, ControlCharactersAreRefusedButLineBreaksAllowed) {
  accord::v1::Actor actor;
  actor.set_user_id(std::string("a\0b", 3));
  EXPECT_THAT(ValidateMessage(actor).message(),
              HasSubstr("field user_id contains a control character"));
  actor.set_user_id("line one\r\nline two\tend");
  EXPECT_TRUE(ValidateMessage(actor).ok());
}

TEST(TextProtoTest, IdentifierFormatRefusesSpacesAndPunctuation) {
  auto q = ValidQuery();
  q.add_holders("police; drop table");
  EXPECT_THAT(ValidateMessage(q).message(),
              HasSubstr("field holders[0] must be an identifier"));
  q = ValidQuery();
  q.set_purpose("safeguarding adults");
  EXPECT_THAT(ValidateMessage(q).message(),
              HasSubstr("field purpose must be an identifier"));
}

TEST(TextProtoTest, ResolvePathIsRelativeToTheFile) {
  EXPECT_EQ(ResolvePath("/etc/accord/gateway.textproto", "certs/ca.pem"),
            "/etc/accord/certs/ca.pem");
  EXPECT_EQ(ResolvePath("/etc/accord/gateway.textproto", "/abs.pem"),
            "/abs.pem");
}

}  // namespace
}  // namespace accord
