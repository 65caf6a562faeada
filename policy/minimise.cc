#include "policy/minimise.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "runtime/crypto.h"

namespace accord::policy {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z'); }

struct Ymd {
  int year, month, day;
};

// Strict YYYY-MM-DD with a real calendar day.
bool ParseDate(absl::string_view s, Ymd* out) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(s[i])) return false;
  }
  const int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
                (s[3] - '0');
  const int m = (s[5] - '0') * 10 + (s[6] - '0');
  const int d = (s[8] - '0') * 10 + (s[9] - '0');
  const absl::CivilDay day(y, m, d);
  if (day.year() != y || day.month() != m || day.day() != d || y < 1800)
    return false;
  *out = {y, m, d};
  return true;
}

absl::Status BadDate(absl::string_view field) {
  return absl::InvalidArgumentError(
      absl::StrCat("field ", field, ": not a date in the form YYYY-MM-DD"));
}

absl::StatusOr<std::string> DistrictOf(absl::string_view postcode,
                                       absl::string_view field) {
  std::string compact;
  compact.reserve(8);
  int spaces = 0;
  for (char c : postcode) {
    if (c == ' ') {
      ++spaces;
      continue;
    }
    compact.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("field ", field, ": not a UK postcode"));
  };
  if (spaces > 1 || compact.size() < 5 || compact.size() > 7) return bad();
  const size_t n = compact.size();
  // Inward code: digit, letter, letter.
  if (!IsDigit(compact[n - 3]) || !IsAlpha(compact[n - 2]) ||
      !IsAlpha(compact[n - 1])) {
    return bad();
  }
  const std::string outward = compact.substr(0, n - 3);
  // Outward code: A9, A99, AA9, AA99, A9A, AA9A.
  std::string shape;
  for (char c : outward) {
    if (IsAlpha(c)) {
      shape.push_back('A');
    } else if (IsDigit(c)) {
      shape.push_back('9');
    } else {
      return bad();
    }
  }
  if (shape != "A9" && shape != "A99" && shape != "AA9" && shape != "AA99" &&
      shape != "A9A" && shape != "AA9A") {
    return bad();
  }
  return outward;
}

absl::StatusOr<std::string> AgeBandOf(absl::string_view date, absl::Time now,
                                      absl::string_view field) {
  Ymd d;
  if (!ParseDate(date, &d)) return BadDate(field);
  const absl::CivilDay today = absl::ToCivilDay(now, absl::UTCTimeZone());
  int age = static_cast<int>(today.year()) - d.year;
  if (today.month() < d.month ||
      (today.month() == d.month && today.day() < d.day))
    --age;
  if (age < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field ", field, ": date is after the moment of disclosure"));
  }
  const int low = age / 5 * 5;
  return absl::StrCat(low, "-", low + 4);
}

}  // namespace

std::string Pseudonym(absl::string_view value, const MinimiseContext& ctx) {
  std::string message;
  message.reserve(ctx.recipient_org.size() + 1 + value.size());
  message.append(ctx.recipient_org.data(), ctx.recipient_org.size());
  message.push_back('\0');
  message.append(value.data(), value.size());
  const Digest mac = HmacSha256(ctx.pseudonym_key, message);
  return absl::StrCat("psd:",
                      HexEncode(absl::string_view(
                          reinterpret_cast<const char*>(mac.data()), 16)));
}

absl::StatusOr<std::string> DateToYear(absl::string_view date) {
  Ymd d;
  if (!ParseDate(date, &d)) return BadDate("date");
  return std::string(date.substr(0, 4));
}

absl::StatusOr<std::string> DateToAgeBand(absl::string_view date,
                                          absl::Time now) {
  return AgeBandOf(date, now, "date");
}

absl::StatusOr<std::string> PostcodeToDistrict(absl::string_view postcode) {
  return DistrictOf(postcode, "postcode");
}

absl::StatusOr<std::string> ApplyTransform(accord::v1::Transform transform,
                                           const FieldSpec& field,
                                           absl::string_view value,
                                           const MinimiseContext& ctx) {
  if (!TransformFitsField(transform, field.kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field ", field.name, ": transform ",
        accord::v1::Transform_Name(transform), " does not apply to a ",
        ValueKindName(field.kind), " field"));
  }
  switch (transform) {
    case accord::v1::TRANSFORM_KEEP:
      return std::string(value);
    case accord::v1::TRANSFORM_DROP:
      return std::string();
    case accord::v1::TRANSFORM_PSEUDONYMISE:
      return Pseudonym(value, ctx);
    case accord::v1::TRANSFORM_DATE_TO_YEAR: {
      Ymd d;
      if (!ParseDate(value, &d)) return BadDate(field.name);
      return std::string(value.substr(0, 4));
    }
    case accord::v1::TRANSFORM_DATE_TO_AGE_BAND:
      return AgeBandOf(value, ctx.now, field.name);
    case accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT:
      return DistrictOf(value, field.name);
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("field ", field.name, ": no transform given"));
}

}  // namespace accord::policy
