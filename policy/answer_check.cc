#include "policy/answer_check.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include <string>

namespace accord::policy {
namespace {

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// YYYY-MM-DD with a plausible month and day.
bool IsDate(absl::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  if (!AllDigits(s.substr(0, 4)) || !AllDigits(s.substr(5, 2)) ||
      !AllDigits(s.substr(8, 2)))
    return false;
  const int month = (s[5] - '0') * 10 + (s[6] - '0');
  const int day = (s[8] - '0') * 10 + (s[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

bool IsYear(absl::string_view s) { return s.size() == 4 && AllDigits(s); }

// "35-39": a five-year band starting at a multiple of five.
bool IsAgeBand(absl::string_view s) {
  const size_t dash = s.find('-');
  if (dash == absl::string_view::npos || dash == 0 || dash > 3) return false;
  absl::string_view lo = s.substr(0, dash), hi = s.substr(dash + 1);
  if (!AllDigits(lo) || !AllDigits(hi) || hi.size() > 3) return false;
  const int low = std::stoi(std::string(lo));
  const int high = std::stoi(std::string(hi));
  return low % 5 == 0 && high == low + 4;
}

bool IsOutwardChar(char c, bool digit) {
  return digit ? absl::ascii_isdigit(static_cast<unsigned char>(c))
               : absl::ascii_isupper(static_cast<unsigned char>(c));
}

// The outward code of a UK postcode: A9, A99, AA9, AA99, A9A, AA9A.
bool IsDistrict(absl::string_view s) {
  if (s.size() < 2 || s.size() > 4) return false;
  size_t i = 0;
  if (!IsOutwardChar(s[i++], false)) return false;
  if (IsOutwardChar(s[i], false)) ++i;
  if (i >= s.size() || !IsOutwardChar(s[i++], true)) return false;
  if (i < s.size()) {
    const char c = s[i++];
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        !absl::ascii_isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return i == s.size();
}

// A full postcode: outward code, optional space, digit and two letters.
bool IsPostcode(absl::string_view s) {
  std::string compact;
  for (char c : s) {
    if (c != ' ') compact.push_back(absl::ascii_toupper(c));
  }
  if (compact.size() < 5 || compact.size() > 7) return false;
  absl::string_view in(compact);
  absl::string_view inward = in.substr(in.size() - 3);
  return IsDistrict(in.substr(0, in.size() - 3)) &&
         absl::ascii_isdigit(static_cast<unsigned char>(inward[0])) &&
         absl::ascii_isupper(static_cast<unsigned char>(inward[1])) &&
         absl::ascii_isupper(static_cast<unsigned char>(inward[2]));
}

// "psd:" and 32 lower-case hex digits (minimise.h).
bool IsPseudonym(absl::string_view s) {
  if (s.size() != 36 || s.substr(0, 4) != "psd:") return false;
  for (char c : s.substr(4)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        !(c >= 'a' && c <= 'f'))
      return false;
  }
  return true;
}

bool SameContact(const accord::v1::Involvement& inv,
                 const accord::v1::PointOfContact& poc) {
  return inv.contact_name() == poc.name() && inv.contact_role() == poc.role() &&
         inv.contact_phone() == poc.phone() &&
         inv.contact_email() == poc.email();
}

// An involvement entry as the partnership file describes the holder: a
// service of the holder by name with its point of contact (or the
// organisation's when the service names none), or the organisation's own
// point of contact with no service.
bool InvolvementFromDirectory(const accord::v1::Involvement& inv,
                              const accord::v1::Organisation& holder) {
  if (inv.service().empty()) return SameContact(inv, holder.contact());
  for (const auto& s : holder.services()) {
    if (s.name() != inv.service() && s.id() != inv.service()) continue;
    if (SameContact(inv, s.has_contact() ? s.contact() : holder.contact()))
      return true;
  }
  return false;
}

}  // namespace

bool HasPlannedShape(accord::v1::Transform transform, ValueKind kind,
                     absl::string_view value) {
  switch (transform) {
    case accord::v1::TRANSFORM_KEEP:
      switch (kind) {
        case ValueKind::kDate:
          return IsDate(value);
        case ValueKind::kPostcode:
          return IsPostcode(value);
        case ValueKind::kText:
          return !value.empty();
      }
      return false;
    case accord::v1::TRANSFORM_DATE_TO_YEAR:
      return kind == ValueKind::kDate && IsYear(value);
    case accord::v1::TRANSFORM_DATE_TO_AGE_BAND:
      return kind == ValueKind::kDate && IsAgeBand(value);
    case accord::v1::TRANSFORM_POSTCODE_TO_DISTRICT:
      return kind == ValueKind::kPostcode && IsDistrict(value);
    case accord::v1::TRANSFORM_PSEUDONYMISE:
      return IsPseudonym(value);
    default:
      return false;
  }
}

std::vector<std::string> HoldToPlan(const Decision& decision,
                                    const accord::v1::Organisation& holder,
                                    accord::v1::DiscloseResponse* answer) {
  std::vector<std::string> dropped;
  auto released = [&](int item) {
    if (item < 0 || !decision.plan.Has(item)) return accord::v1::TRANSFORM_UNSPECIFIED;
    const accord::v1::Transform t = decision.TransformOf(item);
    return t == accord::v1::TRANSFORM_DROP ? accord::v1::TRANSFORM_UNSPECIFIED
                                           : t;
  };
  const bool involvement_only = decision.involvement_only;

  // Subject fields.
  for (auto it = answer->mutable_fields()->begin();
       it != answer->mutable_fields()->end();) {
    const FieldSpec* spec = FindField(it->first);
    const accord::v1::Transform t =
        spec == nullptr || involvement_only
            ? accord::v1::TRANSFORM_UNSPECIFIED
            : released(ItemOfField(it->first));
    if (t != accord::v1::TRANSFORM_UNSPECIFIED &&
        HasPlannedShape(t, spec->kind, it->second)) {
      ++it;
      continue;
    }
    dropped.push_back(spec != nullptr ? std::string(spec->name)
                                      : std::string("(unknown field)"));
    answer->mutable_fields()->erase(it++);
  }

  // Records.
  std::set<int> dropped_categories;
  auto* records = answer->mutable_records();
  int kept = 0;
  for (int i = 0; i < records->size(); ++i) {
    const accord::v1::DisclosedRecord& r = records->Get(i);
    const accord::v1::Transform t =
        involvement_only ? accord::v1::TRANSFORM_UNSPECIFIED
                         : released(ItemOfCategory(r.category()));
    bool ok = t != accord::v1::TRANSFORM_UNSPECIFIED && IsPseudonym(r.ref());
    if (ok && !r.recorded().empty()) {
      ok = t == accord::v1::TRANSFORM_DATE_TO_YEAR ? IsYear(r.recorded())
                                                    : IsDate(r.recorded());
    }
    if (!ok) {
      dropped_categories.insert(r.category());
      continue;
    }
    if (kept != i) records->SwapElements(kept, i);
    ++kept;
  }
  while (records->size() > kept) records->RemoveLast();
  for (int c : dropped_categories) {
    dropped.push_back(absl::StrCat(
        "record:",
        accord::v1::DataCategory_Name(static_cast<accord::v1::DataCategory>(c))));
  }

  // Involvement: only in an involvement answer, and only as the partnership
  // file has it.
  auto* involvement = answer->mutable_involvement();
  kept = 0;
  bool involvement_dropped = false;
  for (int i = 0; i < involvement->size(); ++i) {
    if (!involvement_only ||
        !InvolvementFromDirectory(involvement->Get(i), holder)) {
      involvement_dropped = true;
      continue;
    }
    if (kept != i) involvement->SwapElements(kept, i);
    ++kept;
  }
  while (involvement->size() > kept) involvement->RemoveLast();
  if (involvement_dropped) dropped.push_back("involvement");

  // Withheld notes name a field or a category; their reasons are short.
  auto* withheld = answer->mutable_withheld();
  kept = 0;
  bool withheld_dropped = false;
  for (int i = 0; i < withheld->size(); ++i) {
    const auto& w = withheld->Get(i);
    accord::v1::DataCategory c;
    const bool names_item =
        FindField(w.what()) != nullptr ||
        (accord::v1::DataCategory_Parse(w.what(), &c) &&
         c != accord::v1::DATA_CATEGORY_UNSPECIFIED);
    if (!names_item || w.reason().size() > 200) {
      withheld_dropped = true;
      continue;
    }
    if (kept != i) withheld->SwapElements(kept, i);
    ++kept;
  }
  while (withheld->size() > kept) withheld->RemoveLast();
  if (withheld_dropped) dropped.push_back("withheld");
  return dropped;
}

}  // namespace accord::policy
