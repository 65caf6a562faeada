#include "policy/minimise.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/civil_time.h"

namespace accord::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::Time Day(int y, int m, int d) {
  return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
}

MinimiseContext Ctx(absl::string_view recipient = "police") {
  return MinimiseContext{Day(2026, 4, 12), recipient,
                         "0123456789abcdef0123456789abcdef"};
}

TEST(MinimiseTest, KeepAndDrop) {
  const FieldSpec& name = *FindField("given_name");
  EXPECT_EQ(*ApplyTransform(accord::v1::TRANSFORM_KEEP, name, "Ama", Ctx()),
            "Ama");
  EXPECT_EQ(*ApplyTransform(accord::v1::TRANSFORM_DROP, name, "Ama", Ctx()),
            "");
}

TEST(MinimiseTest, DateToYear) {
  const FieldSpec& dob = *FindField("date_of_birth");
  EXPECT_EQ(*ApplyTransform(accord::v1::TRANSFORM_DATE_TO_YEAR, dob,
                            "1987-04-12", Ctx()),
            "1987");
  EXPECT_EQ(*DateToYear("2000-02-29"), "2000");
  EXPECT_FALSE(DateToYear("2001-02-29").ok());
}

TEST(MinimiseTest, AgeBandAtBoundaries) {
  const absl::Time now = Day(2026, 4, 12);
  // 39th birthday today: 39, band 35-39.
  EXPECT_EQ(*DateToAgeBand("1987-04-12", now), "35-39");
  // 40th birthday today: 40-44.
  EXPECT_EQ(*DateToAgeBand("1986-04-12", now), "40-44");
  // 40th birthday tomorrow: still 39.
  EXPECT_EQ(*DateToAgeBand("1986-04-13", now), "35-39");
  EXPECT_EQ(*DateToAgeBand("2026-04-12", now), "0-4");
  EXPECT_EQ(*DateToAgeBand("2021-04-12", now), "5-9");
  EXPECT_EQ(*DateToAgeBand("2021-04-13", now), "0-4");
  // Born on 29 February: not yet 18 on 28 February of a common year.
  EXPECT_EQ(*DateToAgeBand("2008-02-29", Day(2026, 2, 28)), "15-19");
  EXPECT_EQ(*DateToAgeBand("2006-02-28", Day(2026, 2, 28)), "20-24");
  const FieldSpec& dob = *FindField("date_of_birth");
  EXPECT_EQ(*ApplyTransform(accord::v1::TRANSFORM_DATE_TO_AGE_BAND, dob,
                            "1987-04-12", Ctx()),
            "35-39");
}

TEST(MinimiseTest, MalformedDatesNameTheFieldNotTheValue) {
  const FieldSpec& dob = *FindField("date_of_birth");
  for (const char* bad : {"12/04/1987", "1987-13-01", "1987-02-30", "1987-4-12",
                          "", "19870412", "1987-04-12x"}) {
    auto out =
        ApplyTransform(accord::v1::TRANSFORM_DATE_TO_AGE_BAND, dob, bad, Ctx());
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(), HasSubstr("date_of_birth"));
    if (*bad) {
      EXPECT_THAT(out.status().message(), Not(HasSubstr(bad)));
    }
  }
  auto future = ApplyTransform(accord::v1::TRANSFORM_DATE_TO_AGE_BAND, dob,
                               "2030-01-01", Ctx());
  EXPECT_THAT(future.status().message(),
              HasSubstr("after the moment of disclosure"));
}

TEST(MinimiseTest, PostcodeDistrictForms) {
  EXPECT_EQ(*PostcodeToDistrict("LS6 2AB"), "LS6");
  EXPECT_EQ(*PostcodeToDistrict("ls62ab"), "LS6");
  EXPECT_EQ(*PostcodeToDistrict("M1 1AE"), "M1");
  EXPECT_EQ(*PostcodeToDistrict("B33 8TH"), "B33");
  EXPECT_EQ(*PostcodeToDistrict("CR2 6XH"), "CR2");
  EXPECT_EQ(*PostcodeToDistrict("DN55 1PT"), "DN55");
  EXPECT_EQ(*PostcodeToDistrict("W1A 1HQ"), "W1A");
  EXPECT_EQ(*PostcodeToDistrict("ec1a1bb"), "EC1A");
  const FieldSpec& pc = *FindField("postcode");
  for (const char* bad :
       {"LS6", "LS6 2A", "12345", "LS6  2AB", "LS6-2AB", "ZZZZ 1AA", ""}) {
    auto out = ApplyTransform(accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT, pc,
                              bad, Ctx());
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("field postcode"));
  }
}

TEST(MinimiseTest, TransformMustFitTheField) {
  auto out = ApplyTransform(accord::v1::TRANSFORM_DATE_TO_YEAR,
                            *FindField("postcode"), "LS6 2AB", Ctx());
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("postcode"));
  EXPECT_THAT(out.status().message(), HasSubstr("TRANSFORM_DATE_TO_YEAR"));
  EXPECT_FALSE(ApplyTransform(accord::v1::TRANSFORM_UNSPECIFIED,
                              *FindField("phone"), "x", Ctx())
                   .ok());
}

TEST(MinimiseTest, PseudonymsAreStablePerRecipientAndDifferBetweenRecipients) {
  const FieldSpec& nhs = *FindField("nhs_number");
  const auto police1 = *ApplyTransform(accord::v1::TRANSFORM_PSEUDONYMISE, nhs,
                                       "9434765919", Ctx("police"));
  const auto police2 = *ApplyTransform(accord::v1::TRANSFORM_PSEUDONYMISE, nhs,
                                       "9434765919", Ctx("police"));
  const auto council = *ApplyTransform(accord::v1::TRANSFORM_PSEUDONYMISE, nhs,
                                       "9434765919", Ctx("council"));
  EXPECT_EQ(police1, police2);
  EXPECT_NE(police1, council);
  EXPECT_THAT(police1, ::testing::StartsWith("psd:"));
  EXPECT_EQ(police1.size(), 4u + 32u);
  EXPECT_THAT(police1, Not(HasSubstr("9434765919")));
  // The separator keeps (recipient, value) pairs apart: "ab"+"c" != "a"+"bc".
  EXPECT_NE(Pseudonym("c", Ctx("ab")), Pseudonym("bc", Ctx("a")));
  // A different key gives a different pseudonym.
  MinimiseContext other = Ctx("police");
  other.pseudonym_key = "another key";
  EXPECT_NE(Pseudonym("9434765919", other), police1);
}

}  // namespace
}  // namespace accord::policy
