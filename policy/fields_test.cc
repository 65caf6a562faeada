#include "policy/fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord::policy {
namespace {

TEST(FieldsTest, CatalogueHasCategoriesAndKinds) {
  ASSERT_NE(FindField("date_of_birth"), nullptr);
  EXPECT_EQ(FindField("date_of_birth")->kind, ValueKind::kDate);
  EXPECT_EQ(FindField("date_of_birth")->category,
            accord::v1::DATA_CATEGORY_IDENTITY);
  EXPECT_EQ(FindField("postcode")->kind, ValueKind::kPostcode);
  EXPECT_EQ(FindField("postcode")->category, accord::v1::DATA_CATEGORY_CONTACT);
  EXPECT_EQ(FindField("safe_contact")->category,
            accord::v1::DATA_CATEGORY_CONTACT);
  EXPECT_EQ(FindField("nhs_number")->category,
            accord::v1::DATA_CATEGORY_IDENTITY);
  EXPECT_EQ(FindField("ethnicity")->category,
            accord::v1::DATA_CATEGORY_ETHNICITY);
  EXPECT_EQ(FindField("sexual_orientation")->category,
            accord::v1::DATA_CATEGORY_SEX_LIFE);
  EXPECT_EQ(FindField("disability")->category,
            accord::v1::DATA_CATEGORY_HEALTH);
  EXPECT_EQ(FindField("shoe_size"), nullptr);
  EXPECT_EQ(AllFields().size(), 14u);
  for (const FieldSpec& f : AllFields())
    EXPECT_EQ(&AllFields()[FieldIndex(f)], &f);
}

TEST(FieldsTest, SpecialCategoriesAndOffending) {
  EXPECT_TRUE(IsSpecialCategory(accord::v1::DATA_CATEGORY_HEALTH));
  EXPECT_TRUE(IsSpecialCategory(accord::v1::DATA_CATEGORY_ETHNICITY));
  EXPECT_TRUE(IsSpecialCategory(accord::v1::DATA_CATEGORY_SEX_LIFE));
  EXPECT_FALSE(IsSpecialCategory(accord::v1::DATA_CATEGORY_RISK));
  EXPECT_FALSE(IsSpecialCategory(accord::v1::DATA_CATEGORY_OFFENDING));
  EXPECT_TRUE(IsCriminalOffenceData(accord::v1::DATA_CATEGORY_OFFENDING));
}

TEST(FieldsTest, TransformsFitKinds) {
  EXPECT_TRUE(TransformFitsField(accord::v1::TRANSFORM_DATE_TO_AGE_BAND,
                                 ValueKind::kDate));
  EXPECT_FALSE(TransformFitsField(accord::v1::TRANSFORM_DATE_TO_AGE_BAND,
                                  ValueKind::kPostcode));
  EXPECT_TRUE(TransformFitsField(accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT,
                                 ValueKind::kPostcode));
  EXPECT_FALSE(TransformFitsField(accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT,
                                  ValueKind::kText));
  EXPECT_TRUE(
      TransformFitsField(accord::v1::TRANSFORM_PSEUDONYMISE, ValueKind::kText));
  EXPECT_FALSE(
      TransformFitsField(accord::v1::TRANSFORM_UNSPECIFIED, ValueKind::kText));
  EXPECT_TRUE(TransformFitsCategory(accord::v1::TRANSFORM_DATE_TO_YEAR));
  EXPECT_FALSE(
      TransformFitsCategory(accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT));
}

}  // namespace
}  // namespace accord::policy
