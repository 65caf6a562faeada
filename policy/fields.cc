#include "policy/fields.h"

#include <array>

namespace accord::policy {
namespace {

using accord::v1::DataCategory;

constexpr std::array<FieldSpec, 14> kFields = {{
    {"given_name", accord::v1::DATA_CATEGORY_IDENTITY, ValueKind::kText},
    {"family_name", accord::v1::DATA_CATEGORY_IDENTITY, ValueKind::kText},
    {"date_of_birth", accord::v1::DATA_CATEGORY_IDENTITY, ValueKind::kDate},
    {"gender", accord::v1::DATA_CATEGORY_IDENTITY, ValueKind::kText},
    {"preferred_language", accord::v1::DATA_CATEGORY_IDENTITY,
     ValueKind::kText},
    {"nhs_number", accord::v1::DATA_CATEGORY_IDENTITY, ValueKind::kText},
    {"postcode", accord::v1::DATA_CATEGORY_CONTACT, ValueKind::kPostcode},
    {"address", accord::v1::DATA_CATEGORY_CONTACT, ValueKind::kText},
    {"phone", accord::v1::DATA_CATEGORY_CONTACT, ValueKind::kText},
    {"email", accord::v1::DATA_CATEGORY_CONTACT, ValueKind::kText},
    {"safe_contact", accord::v1::DATA_CATEGORY_CONTACT, ValueKind::kText},
    {"ethnicity", accord::v1::DATA_CATEGORY_ETHNICITY, ValueKind::kText},
    {"sexual_orientation", accord::v1::DATA_CATEGORY_SEX_LIFE,
     ValueKind::kText},
    {"disability", accord::v1::DATA_CATEGORY_HEALTH, ValueKind::kText},
}};

}  // namespace

absl::Span<const FieldSpec> AllFields() { return absl::MakeConstSpan(kFields); }

const FieldSpec* FindField(absl::string_view name) {
  for (const FieldSpec& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

int FieldIndex(const FieldSpec& spec) {
  return static_cast<int>(&spec - kFields.data());
}

bool IsSpecialCategory(DataCategory category) {
  return category == accord::v1::DATA_CATEGORY_HEALTH ||
         category == accord::v1::DATA_CATEGORY_ETHNICITY ||
         category == accord::v1::DATA_CATEGORY_SEX_LIFE;
}

bool IsCriminalOffenceData(DataCategory category) {
  return category == accord::v1::DATA_CATEGORY_OFFENDING;
}

bool TransformFitsField(accord::v1::Transform transform, ValueKind kind) {
  switch (transform) {
    case accord::v1::TRANSFORM_KEEP:
    case accord::v1::TRANSFORM_DROP:
    case accord::v1::TRANSFORM_PSEUDONYMISE:
      return true;
    case accord::v1::TRANSFORM_DATE_TO_YEAR:
    case accord::v1::TRANSFORM_DATE_TO_AGE_BAND:
      return kind == ValueKind::kDate;
    case accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT:
      return kind == ValueKind::kPostcode;
    default:
      return false;
  }
}

bool TransformFitsCategory(accord::v1::Transform transform) {
  return transform == accord::v1::TRANSFORM_KEEP ||
         transform == accord::v1::TRANSFORM_DROP ||
         transform == accord::v1::TRANSFORM_DATE_TO_YEAR;
}

absl::string_view ValueKindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kText:
      return "text";
    case ValueKind::kDate:
      return "date";
    case ValueKind::kPostcode:
      return "postcode";
  }
  return "text";
}

}  // namespace accord::policy
