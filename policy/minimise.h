// Minimisation: the transforms an agreement applies to each released field
// before it leaves the holder (keep, drop, date to year or age band, postcode
// to district, per-recipient pseudonym).
//
// Errors name the field, never its value. Pure functions; thread-safe.
#ifndef ACCORD_POLICY_MINIMISE_H_
#define ACCORD_POLICY_MINIMISE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/policy.pb.h"
#include "policy/fields.h"

namespace accord::policy {

// What a transform may depend on: the moment of disclosure (age bands), the
// recipient organisation and the holder's pseudonym secret (pseudonyms). The
// views must outlive the context.
struct MinimiseContext {
  absl::Time now;
  absl::string_view recipient_org;
  absl::string_view pseudonym_key;
};

// Applies `transform` to `value` of `field`. DROP yields an empty string (the
// caller omits the field). A transform that does not fit the field's kind, or
// a malformed date or postcode, is InvalidArgument naming the field.
[[nodiscard]] absl::StatusOr<std::string> ApplyTransform(
    accord::v1::Transform transform, const FieldSpec& field,
    absl::string_view value, const MinimiseContext& ctx);

// "psd:" + hex of the first 16 bytes of
// HMAC-SHA256(pseudonym_key, recipient_org || 0x00 || value): stable for one
// recipient, unlinkable between recipients.
std::string Pseudonym(absl::string_view value, const MinimiseContext& ctx);

// "1987-04-12" -> "1987".
[[nodiscard]] absl::StatusOr<std::string> DateToYear(absl::string_view date);
// The 5-year band of the age at `now` (UTC), e.g. "35-39".
[[nodiscard]] absl::StatusOr<std::string> DateToAgeBand(absl::string_view date,
                                                        absl::Time now);
// The outward code of a UK postcode: "LS6 2AB" or "ls62ab" -> "LS6".
[[nodiscard]] absl::StatusOr<std::string> PostcodeToDistrict(
    absl::string_view postcode);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_MINIMISE_H_
