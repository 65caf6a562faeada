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

TEST(TextProtoTest, ResolvePathIsRelativeToTheFile) {
  EXPECT_EQ(ResolvePath("/etc/accord/gateway.textproto", "certs/ca.pem"),
            "/etc/accord/certs/ca.pem");
  EXPECT_EQ(ResolvePath("/etc/accord/gateway.textproto", "/abs.pem"),
            "/abs.pem");
}

}  // namespace
}  // namespace accord
