#include "linkage/tokens.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/crypto.h"

namespace accord::linkage {
namespace {

using ::accord::v1::SubjectToken;
using ::accord::v1::TOKEN_KIND_DOB_POSTCODE;
using ::accord::v1::TOKEN_KIND_NAME_DOB;
using ::accord::v1::TOKEN_KIND_NHS_NUMBER;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

MATCHER_P2(TokenIs, kind, value, "") {
  return arg.kind() == kind && arg.value() == value;
}

// The fixed key of the known-answer test: bytes 0x00..0x1f.
std::string FixedKeyBytes() {
  std::string key;
  for (int i = 0; i < 32; ++i) key.push_back(static_cast<char>(i));
  return key;
}

LinkageKey FixedKey() { return *LinkageKey::FromBytes(FixedKeyBytes()); }

IdentifierSet Zoe(std::string given, std::string family, std::string dob) {
  IdentifierSet ids;
  ids.given_name = std::move(given);
  ids.family_name = std::move(family);
  ids.date_of_birth = std::move(dob);
  return ids;
}

std::string NameDobToken(const LinkageKey& key, const IdentifierSet& ids) {
  auto tokens = DeriveTokens(key, ids);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  if (!tokens.ok() || tokens->size() != 1) return "";
  EXPECT_EQ((*tokens)[0].kind(), TOKEN_KIND_NAME_DOB);
  return (*tokens)[0].value();
}

// Pins the derivation: if this changes, every token every partner holds
// stops matching. Values computed independently (Python hmac) from the
// documented message format.
TEST(DeriveTokensTest, KnownAnswers) {
  IdentifierSet ids = Zoe("Zoë", "O'Brien-Smith", "07/03/1990");
  ids.nhs_number = "943 476 5919";
  ids.postcode = "ls6 2ab";
  auto tokens = DeriveTokens(FixedKey(), ids);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(*tokens, ElementsAre(TokenIs(TOKEN_KIND_NAME_DOB,
                                           "40d68342e1f6cf357f31e91ae99a4afb232"
                                           "b3cca4feb63b0bfcfb26c43c1cd8b"),
                                   TokenIs(TOKEN_KIND_NHS_NUMBER,
                                           "8ff465f814029c0e60d3a46bc9d98480691"
                                           "45334b38ad8bb8dcee2a801d9d385"),
                                   TokenIs(TOKEN_KIND_DOB_POSTCODE,
                                           "98734f2388a587909b4077bcda1b9bec9f6"
                                           "5594bb65b8d130c732e14ed114bbb")));
  for (const SubjectToken& t : *tokens)
    EXPECT_TRUE(ValidateTokenValue(t.value()).ok());
}

TEST(DeriveTokensTest, NamesWrittenDifferentlyMatch) {
  const LinkageKey key = FixedKey();
  const std::string expected =
      NameDobToken(key, Zoe("Zoë", "O'Brien-Smith", "1990-03-07"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(NameDobToken(key, Zoe("ZOE", "OBRIEN SMITH", "1990-03-07")),
            expected);
  EXPECT_EQ(
      NameDobToken(key, Zoe(" zoe ", " o\u2019brien smith ", "1990-03-07")),
      expected);
  EXPECT_EQ(NameDobToken(
                key, Zoe("Zoe\u0308", "O\u2019Brien\u2013Smith", "1990-03-07")),
            expected);
}

TEST(DeriveTokensTest, DatesInEveryAcceptedFormatMatch) {
  const LinkageKey key = FixedKey();
  const std::string expected =
      NameDobToken(key, Zoe("Zoe", "OBrien Smith", "1990-03-07"));
  for (const char* dob :
       {"07/03/1990", "7/3/1990", "07-03-1990", "7-3-1990", "19900307"}) {
    EXPECT_EQ(NameDobToken(key, Zoe("Zoe", "OBrien Smith", dob)), expected)
        << dob;
  }
  EXPECT_NE(NameDobToken(key, Zoe("Zoe", "OBrien Smith", "03/07/1990")),
            expected)
      << "dates are day first";
}

TEST(DeriveTokensTest, PostcodesWithAndWithoutSpacesMatch) {
  const LinkageKey key = FixedKey();
  std::string expected;
  for (const char* postcode : {"LS6 2AB", "ls62ab", "  Ls6 2aB", "LS62AB"}) {
    IdentifierSet ids;
    ids.date_of_birth = "1990-03-07";
    ids.postcode = postcode;
    auto tokens = DeriveTokens(key, ids);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    ASSERT_EQ(tokens->size(), 1u);
    EXPECT_EQ((*tokens)[0].kind(), TOKEN_KIND_DOB_POSTCODE);
    if (expected.empty()) expected = (*tokens)[0].value();
    EXPECT_EQ((*tokens)[0].value(), expected) << postcode;
  }
}

TEST(DeriveTokensTest, DifferentKeyGivesDifferentTokens) {
  std::string other_bytes = FixedKeyBytes();
  other_bytes[0] ^= 1;
  const LinkageKey other = *LinkageKey::FromBytes(other_bytes);
  const IdentifierSet ids = Zoe("Zoe", "OBrien Smith", "1990-03-07");
  EXPECT_NE(NameDobToken(FixedKey(), ids), NameDobToken(other, ids));
}

TEST(DeriveTokensTest, KindsAreDomainSeparated) {
  // The same date and text must not give the same token under two kinds.
  IdentifierSet a;
  a.nhs_number = "9434765919";
  IdentifierSet b;
  b.date_of_birth = "1990-03-07";
  b.postcode = "LS6 2AB";
  auto ta = DeriveTokens(FixedKey(), a);
  auto tb = DeriveTokens(FixedKey(), b);
  ASSERT_TRUE(ta.ok() && tb.ok());
  ASSERT_EQ(ta->size(), 1u);
  ASSERT_EQ(tb->size(), 1u);
  EXPECT_NE((*ta)[0].value(), (*tb)[0].value());
}

TEST(DeriveTokensTest, DerivesOnlyWhatIsKnown) {
  const LinkageKey key = FixedKey();
  IdentifierSet none;
  none.given_name = "Zoe";
  none.postcode = " ";  // blank counts as not known
  none.nhs_number = "";
  auto tokens = DeriveTokens(key, none);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_TRUE(tokens->empty());

  IdentifierSet nhs_only;
  nhs_only.nhs_number = "943 476 5919";
  tokens = DeriveTokens(key, nhs_only);
  ASSERT_TRUE(tokens.ok());
  EXPECT_THAT(
      *tokens,
      ElementsAre(TokenIs(
          TOKEN_KIND_NHS_NUMBER,
          "8ff465f814029c0e60d3a46bc9d9848069145334b38ad8bb8dcee2a801d9d385")));
}

TEST(DeriveTokensTest, MalformedFieldIsNamedAndNotEchoed) {
  const LinkageKey key = FixedKey();
  struct Case {
    IdentifierSet ids;
    const char* field;
    const char* value;
  };
  IdentifierSet bad_date = Zoe("Zoe", "Smith", "2023-02-30");
  IdentifierSet bad_nhs = Zoe("Zoe", "Smith", "1990-03-07");
  bad_nhs.nhs_number = "943 476 5918";
  IdentifierSet bad_utf8 = Zoe("Zoe", "Sm\xC3ith", "1990-03-07");
  IdentifierSet
      bad_postcode;  // no date of birth, so no token uses it; still checked
  bad_postcode.postcode = "QQ99 QQQ";
  IdentifierSet bad_lone_given;
  bad_lone_given.given_name = "Zo\xFF";
  for (const Case& c :
       {Case{bad_date, "date_of_birth: not a real calendar date", "2023-02-30"},
        Case{bad_nhs, "nhs_number: check digit", "5918"},
        Case{bad_utf8, "family_name: not valid UTF-8", "Sm"},
        Case{bad_postcode, "postcode: not a full UK postcode", "QQ99"},
        Case{bad_lone_given, "given_name: not valid UTF-8", "Zo"}}) {
    auto tokens = DeriveTokens(key, c.ids);
    EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument)
        << c.field;
    EXPECT_THAT(std::string(tokens.status().message()), HasSubstr(c.field));
    EXPECT_THAT(std::string(tokens.status().message()),
                Not(HasSubstr(c.value)));
  }
}

TEST(LinkageKeyTest, LoadsHexFileAndRefusesShortOrLooseKeys) {
  const std::string path = ::testing::TempDir() + "/linkage.key";
  { std::ofstream(path) << HexEncode(FixedKeyBytes()) << "\n"; }
  chmod(path.c_str(), 0600);
  auto key = LinkageKey::Load(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(NameDobToken(*key, Zoe("Zoë", "O'Brien-Smith", "1990-03-07")),
            "40d68342e1f6cf357f31e91ae99a4afb232b3cca4feb63b0bfcfb26c43c1cd8b");

  // A moved key still works.
  LinkageKey moved = std::move(*key);
  EXPECT_EQ(NameDobToken(moved, Zoe("Zoe", "OBrien Smith", "1990-03-07")),
            "40d68342e1f6cf357f31e91ae99a4afb232b3cca4feb63b0bfcfb26c43c1cd8b");

  chmod(path.c_str(), 0644);
  EXPECT_EQ(LinkageKey::Load(path).status().code(),
            absl::StatusCode::kPermissionDenied);

  const std::string short_path = ::testing::TempDir() + "/short-linkage.key";
  { std::ofstream(short_path) << std::string(62, 'a') << "\n"; }
  chmod(short_path.c_str(), 0600);
  auto short_key = LinkageKey::Load(short_path);
  EXPECT_EQ(short_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(short_key.status().message()),
              HasSubstr("at least 32"));
  EXPECT_THAT(std::string(short_key.status().message()),
              Not(HasSubstr("aaaa")));

  EXPECT_EQ(LinkageKey::FromBytes(std::string(31, 'k')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateTokenValueTest, ExactlySixtyFourLowerCaseHex) {
  EXPECT_TRUE(ValidateTokenValue(std::string(64, 'a')).ok());
  EXPECT_TRUE(
      ValidateTokenValue(
          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
          .ok());
  for (const std::string& bad :
       {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
        std::string(64, 'g'), std::string(""), std::string(63, 'a') + " ",
        std::string(63, 'a') + '\0'}) {
    auto s = ValidateTokenValue(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("64 lower-case hex"));
  }
}

}  // namespace
}  // namespace accord::linkage
