#include "linkage/normalise.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord::linkage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MATCHER_P(IsOkAndHolds, expected, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  *result_listener << "value \"" << *arg << "\"";
  return *arg == expected;
}

MATCHER_P2(StatusIs, code, substr, "") {
  const absl::Status& s = arg.status();
  *result_listener << "status " << s;
  return s.code() == code &&
         s.message().find(substr) != absl::string_view::npos;
}

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(NormaliseNameTest, FoldsAccentsCaseApostrophesAndHyphens) {
  EXPECT_THAT(NormaliseFullName("Zoë", "O'Brien-Smith"),
              IsOkAndHolds("zoe obrien smith"));
  EXPECT_THAT(NormaliseFullName("ZOE", "OBRIEN SMITH"),
              IsOkAndHolds("zoe obrien smith"));
  // Typographic apostrophe, stray and repeated whitespace.
  EXPECT_THAT(NormaliseFullName(" zoe ", " o\u2019brien  smith "),
              IsOkAndHolds("zoe obrien smith"));
  // Decomposed accent: e followed by U+0308 COMBINING DIAERESIS.
  EXPECT_THAT(NormaliseFullName("Zoe\u0308", "O\u02BCBrien\u2010Smith"),
              IsOkAndHolds("zoe obrien smith"));
}

TEST(NormaliseNameTest, LatinTable) {
  EXPECT_THAT(NormaliseNamePart("Éloïse", "given_name"),
              IsOkAndHolds("eloise"));
  EXPECT_THAT(NormaliseNamePart("Müller-Weiß", "family_name"),
              IsOkAndHolds("muller weiss"));
  EXPECT_THAT(NormaliseNamePart("Søren Ærø", "given_name"),
              IsOkAndHolds("soren aero"));
  EXPECT_THAT(NormaliseNamePart("Łukasz Wałęsa", "given_name"),
              IsOkAndHolds("lukasz walesa"));
  EXPECT_THAT(NormaliseNamePart("Ştefan Țurcanu", "given_name"),
              IsOkAndHolds("stefan turcanu"));
  EXPECT_THAT(NormaliseNamePart("Œdipe Þórsdóttir", "given_name"),
              IsOkAndHolds("oedipe thorsdottir"));
  EXPECT_THAT(NormaliseNamePart("Nguyễn", "family_name"),
              IsOkAndHolds("nguyễn"))
      << "letters outside the table are kept as written";
  EXPECT_THAT(NormaliseNamePart("Ana\u00a0María", "given_name"),
              IsOkAndHolds("ana maria"));
}

TEST(NormaliseNameTest, PunctuationSeparatesWords) {
  EXPECT_THAT(NormaliseNamePart("St. John", "family_name"),
              IsOkAndHolds("st john"));
  EXPECT_THAT(NormaliseNamePart("  Mary-Jane\t(Polly)  ", "given_name"),
              IsOkAndHolds("mary jane polly"));
  EXPECT_THAT(NormaliseNamePart("D\u2019Souza", "family_name"),
              IsOkAndHolds("dsouza"));
  EXPECT_THAT(NormaliseNamePart("-- . --", "family_name"), IsOkAndHolds(""));
}

TEST(NormaliseNameTest, RefusesInvalidUtf8NamingTheField) {
  for (const std::string bad : {"Zo\xC3", "Zo\xC3\x28", "\xC0\xAF",
                                "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xFF"}) {
    EXPECT_THAT(NormaliseNamePart(bad, "family_name"),
                StatusIs(kInvalid, "family_name: not valid UTF-8"));
  }
  auto s = NormaliseFullName("Zo\xC3", "Smith");
  EXPECT_THAT(s, StatusIs(kInvalid, "given_name"));
  EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr("Zo")));
}

TEST(NormaliseNameTest, RefusesControlCharactersEmptyPartsAndLongInput) {
  EXPECT_THAT(NormaliseNamePart(std::string("Zo\0e", 4), "given_name"),
              StatusIs(kInvalid, "given_name: contains a control character"));
  EXPECT_THAT(NormaliseFullName("...", "Smith"),
              StatusIs(kInvalid, "given_name: has no letters"));
  EXPECT_THAT(NormaliseFullName("Zoe", " - "),
              StatusIs(kInvalid, "family_name: has no letters"));
  EXPECT_THAT(NormaliseNamePart(std::string(kMaxIdentifierBytes + 1, 'a'),
                                "given_name"),
              StatusIs(kInvalid, "given_name: longer than"));
}

TEST(NormaliseDateOfBirthTest, AcceptsEveryFormat) {
  for (const char* text : {"1990-03-07", "07/03/1990", "7/3/1990", "07-03-1990",
                           "7-3-1990", "19900307", " 1990-03-07\n"}) {
    EXPECT_THAT(NormaliseDateOfBirth(text), IsOkAndHolds("1990-03-07")) << text;
  }
  EXPECT_THAT(NormaliseDateOfBirth("29/02/2000"), IsOkAndHolds("2000-02-29"));
  EXPECT_THAT(NormaliseDateOfBirth("2024-02-29"), IsOkAndHolds("2024-02-29"));
  EXPECT_THAT(NormaliseDateOfBirth("31/12/1870"), IsOkAndHolds("1870-12-31"));
}

TEST(NormaliseDateOfBirthTest, RefusesDatesThatDoNotExist) {
  for (const char* text :
       {"2023-02-30", "29/02/1900", "2023-02-29", "31/04/2001", "00/01/2001",
        "2001-13-01", "2001-00-10", "20230230"}) {
    EXPECT_THAT(NormaliseDateOfBirth(text),
                StatusIs(kInvalid, "date_of_birth: not a real calendar date"))
        << text;
  }
}

TEST(NormaliseDateOfBirthTest, RefusesOtherShapes) {
  for (const char* text :
       {"", "1990", "07/03/90", "1990/03/07", "1990-3-7", "07.03.1990",
        "7//1990", "07/03/1990/1", "O7/03/1990", "+1/03/1990", "1990-03-07T00",
        "12/1869", "01/01/1869", "01/01/2200", "March 7 1990"}) {
    auto s = NormaliseDateOfBirth(text);
    EXPECT_THAT(s, StatusIs(kInvalid, "date_of_birth: ")) << text;
  }
  EXPECT_THAT(NormaliseDateOfBirth("07/03/90"),
              StatusIs(kInvalid, "date_of_birth: year must have four digits"));
}

TEST(NormalisePostcodeTest, CanonicalForm) {
  for (const char* text : {"LS6 2AB", "ls62ab", " Ls6  2aB ", "LS62AB"}) {
    EXPECT_THAT(NormalisePostcode(text), IsOkAndHolds("LS6 2AB")) << text;
  }
  EXPECT_THAT(NormalisePostcode("m11ae"), IsOkAndHolds("M1 1AE"));
  EXPECT_THAT(NormalisePostcode("B338TH"), IsOkAndHolds("B33 8TH"));
  EXPECT_THAT(NormalisePostcode("cr26xh"), IsOkAndHolds("CR2 6XH"));
  EXPECT_THAT(NormalisePostcode("DN551PT"), IsOkAndHolds("DN55 1PT"));
  EXPECT_THAT(NormalisePostcode("w1a 0ax"), IsOkAndHolds("W1A 0AX"));
  EXPECT_THAT(NormalisePostcode("EC1A1BB"), IsOkAndHolds("EC1A 1BB"));
  EXPECT_THAT(NormalisePostcode("gir 0aa"), IsOkAndHolds("GIR 0AA"));
}

TEST(NormalisePostcodeTest, RefusesWrongShapes) {
  for (const char* text :
       {"", "LS6", "LS6 2A", "LS6 AAB", "6LS 2AB", "LSX6 2AB", "LS666 2AB",
        "L 2AB", "LS6-2AB", "LS6 2ÅB"}) {
    EXPECT_THAT(NormalisePostcode(text), StatusIs(kInvalid, "postcode: "))
        << text;
  }
}

TEST(NormaliseNhsNumberTest, ValidatesCheckDigit) {
  EXPECT_THAT(NormaliseNhsNumber("943 476 5919"), IsOkAndHolds("9434765919"));
  EXPECT_THAT(NormaliseNhsNumber("943-476-5919"), IsOkAndHolds("9434765919"));
  EXPECT_THAT(NormaliseNhsNumber("4010232137"), IsOkAndHolds("4010232137"));
  EXPECT_THAT(NormaliseNhsNumber("943 476 5918"),
              StatusIs(kInvalid, "nhs_number: check digit does not match"));
  // Weighted sum ≡ 1 (mod 11): the check digit would be 10, so no number
  // exists.
  EXPECT_THAT(NormaliseNhsNumber("1000000010"),
              StatusIs(kInvalid, "nhs_number: check digit does not match"));
  EXPECT_THAT(NormaliseNhsNumber("943476591"),
              StatusIs(kInvalid, "nhs_number: must have 10"));
  EXPECT_THAT(NormaliseNhsNumber("943.476.5919"),
              StatusIs(kInvalid, "nhs_number: may only hold digits"));
}

}  // namespace
}  // namespace accord::linkage
