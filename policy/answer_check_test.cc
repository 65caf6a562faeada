#include "policy/answer_check.h"

#include <gtest/gtest.h>

namespace accord::policy {
namespace {

using accord::v1::TRANSFORM_DATE_TO_AGE_BAND;
using accord::v1::TRANSFORM_DATE_TO_YEAR;
using accord::v1::TRANSFORM_DROP;
using accord::v1::TRANSFORM_KEEP;
using accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT;
using accord::v1::TRANSFORM_PSEUDONYMISE;

TEST(AnswerCheckTest, KeptValuesHaveTheirFieldsShape) {
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kDate, "1988-02-29"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kDate, "29/02/1988"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kDate, "1988-13-01"));
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kPostcode, "LS6 2AB"));
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kPostcode, "sw1a1aa"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kPostcode, "LS6"));
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kText, "Zoe"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_KEEP, ValueKind::kText, ""));
}

TEST(AnswerCheckTest, GeneralisedValuesMustBeGeneralised) {
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_DATE_TO_YEAR, ValueKind::kDate, "1988"));
  EXPECT_FALSE(
      HasPlannedShape(TRANSFORM_DATE_TO_YEAR, ValueKind::kDate, "1988-02-29"));
  EXPECT_TRUE(
      HasPlannedShape(TRANSFORM_DATE_TO_AGE_BAND, ValueKind::kDate, "35-39"));
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_DATE_TO_AGE_BAND, ValueKind::kDate, "0-4"));
  EXPECT_FALSE(
      HasPlannedShape(TRANSFORM_DATE_TO_AGE_BAND, ValueKind::kDate, "37-38"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_DATE_TO_AGE_BAND, ValueKind::kDate,
                               "1988-02-29"));
  for (const char* d : {"LS6", "M1", "SW1A", "B33", "EC1V"}) {
    EXPECT_TRUE(
        HasPlannedShape(TRANSFORM_POSTCODE_TO_DISTRICT, ValueKind::kPostcode, d))
        << d;
  }
  for (const char* d : {"LS6 2AB", "ls6", "6LS", "LS6 2"}) {
    EXPECT_FALSE(
        HasPlannedShape(TRANSFORM_POSTCODE_TO_DISTRICT, ValueKind::kPostcode, d))
        << d;
  }
  EXPECT_TRUE(HasPlannedShape(TRANSFORM_PSEUDONYMISE, ValueKind::kText,
                              "psd:0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_PSEUDONYMISE, ValueKind::kText,
                               "9434765919"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_PSEUDONYMISE, ValueKind::kText,
                               "psd:0123456789ABCDEF0123456789ABCDEF"));
}

TEST(AnswerCheckTest, ATransformThatDoesNotFitTheFieldOrDropsItReleasesNothing) {
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_DROP, ValueKind::kText, "x"));
  EXPECT_FALSE(HasPlannedShape(TRANSFORM_DATE_TO_YEAR, ValueKind::kText, "1988"));
  EXPECT_FALSE(
      HasPlannedShape(TRANSFORM_POSTCODE_TO_DISTRICT, ValueKind::kText, "LS6"));
}

}  // namespace
}  // namespace accord::policy
