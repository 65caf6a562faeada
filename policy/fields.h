// The field catalogue: every subject field an agreement may release, with its
// data category and the kind of value it holds (which decides the transforms
// that make sense for it). Special category data (UK GDPR Art 9) and criminal
// offence data (Art 10) are recognised here. Immutable; thread-safe.
#ifndef ACCORD_POLICY_FIELDS_H_
#define ACCORD_POLICY_FIELDS_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "accord/v1/common.pb.h"
#include "accord/v1/policy.pb.h"

namespace accord::policy {

// What a field's value looks like.
enum class ValueKind {
  kText,      // free text or a code
  kDate,      // YYYY-MM-DD
  kPostcode,  // a UK postcode, e.g. "LS6 2AB"
};

struct FieldSpec {
  absl::string_view name;
  accord::v1::DataCategory category;
  ValueKind kind;
};

// The whole catalogue, in a fixed order (the order is also the index used by
// the engine's item sets).
absl::Span<const FieldSpec> AllFields();

// The field called `name`, or nullptr when the catalogue has no such field.
const FieldSpec* FindField(absl::string_view name);

// Position of `spec` in AllFields().
int FieldIndex(const FieldSpec& spec);

// HEALTH, ETHNICITY and SEX_LIFE: releasing them needs an Art 9 condition.
bool IsSpecialCategory(accord::v1::DataCategory category);
// OFFENDING: releasing it needs an Art 10 condition.
bool IsCriminalOffenceData(accord::v1::DataCategory category);

// Whether `transform` can be applied to a field of `kind` (e.g. a date
// transform to a date, the district transform to a postcode).
bool TransformFitsField(accord::v1::Transform transform, ValueKind kind);
// Whether `transform` can be applied to whole records of a category: KEEP,
// DROP, or DATE_TO_YEAR (the record's date is shown as a year only).
bool TransformFitsCategory(accord::v1::Transform transform);

absl::string_view ValueKindName(ValueKind kind);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_FIELDS_H_
