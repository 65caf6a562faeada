#include "agent/consent_terms.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/clock.h"

namespace accord::agent {

const ConsentPartNames kConsentRequestNames = {
    "field consent.granted_to_orgs",
    "field consent.granted_to_kinds",
    "field consent.purposes",
    "field consent.categories",
    "field consent.given_at",
    "field consent.method",
    "field consent.recorded_by",
    "field consent.expires_at",
    "field consent.withdrawn_at",
    /*indexed=*/true,
};

const ConsentPartNames kConsentImportNames = {
    "consent_to_orgs",     "consent_to_kinds", "consent_purposes",
    "consent_categories",  "consent_given",    "consent_method",
    "consent_recorded_by", "consent_expires",  "consent_withdrawn",
    /*indexed=*/false,
};

namespace {

// Edits (insert, delete, replace) from `a` to `b`, ignoring case.
size_t Distance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same =
          absl::ascii_tolower(static_cast<unsigned char>(a[i - 1])) ==
          absl::ascii_tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Item(absl::string_view name, int index, bool indexed) {
  return indexed ? absl::StrCat(name, "[", index, "]") : std::string(name);
}

absl::Status Bad(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", what));
}

// Each of `items` must be the id of one of `valid` (organisations or
// purposes of the partnership); otherwise "<name>[i]: <what> (did you mean
// 'law-centre'? valid: ...)": the nearest valid id when one is close, and
// all of them.
template <typename Entry>
absl::Status EachOneOf(
    const google::protobuf::RepeatedPtrField<std::string>& items,
    const google::protobuf::RepeatedPtrField<Entry>& valid,
    absl::string_view name, bool indexed, absl::string_view what) {
  for (int i = 0; i < items.size(); ++i) {
    const std::string& given = items[i];
    if (std::any_of(valid.begin(), valid.end(),
                    [&](const Entry& e) { return e.id() == given; })) {
      continue;
    }
    std::string hint;
    std::vector<std::string> ids;
    size_t best = std::max<size_t>(2, given.size() / 4) + 1;
    for (const auto& e : valid) {
      ids.push_back(e.id());
      const size_t d = Distance(given, e.id());
      if (d < best) {
        best = d;
        hint = absl::StrCat("did you mean '", e.id(), "'? ");
      }
    }
    return Bad(Item(name, i, indexed),
               absl::StrCat(what, " (", hint,
                            "valid: ", absl::StrJoin(ids, ", "), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckConsentTerms(const accord::v1::ConsentRecord& consent,
                               const PartnershipDirectory* partnership,
                               const ConsentPartNames& names) {
  if (partnership != nullptr) {
    auto s = EachOneOf(consent.granted_to_orgs(),
                       partnership->proto().organisations(), names.orgs,
                       names.indexed,
                       "names an organisation that is not in the partnership");
    if (!s.ok()) return s;
  }
  for (int i = 0; i < consent.granted_to_kinds_size(); ++i) {
    if (consent.granted_to_kinds(i) == accord::v1::ORG_KIND_UNSPECIFIED) {
      return Bad(Item(names.kinds, i, names.indexed),
                 "must be a kind of organisation");
    }
  }
  if (consent.granted_to_orgs_size() == 0 &&
      consent.granted_to_kinds_size() == 0) {
    return Bad(names.orgs,
               absl::StrCat("a consent must name at least one organisation (",
                            names.orgs, ") or kind of organisation (",
                            names.kinds, ")"));
  }
  if (consent.purposes_size() == 0)
    return Bad(names.purposes, "a consent must name at least one purpose");
  if (partnership != nullptr) {
    auto s = EachOneOf(consent.purposes(), partnership->proto().purposes(),
                       names.purposes, names.indexed,
                       "names a purpose that is not one of the partnership's");
    if (!s.ok()) return s;
  }
  if (consent.categories_size() == 0) {
    return Bad(names.categories,
               "a consent must name at least one data category");
  }
  for (int i = 0; i < consent.categories_size(); ++i) {
    if (consent.categories(i) == accord::v1::DATA_CATEGORY_UNSPECIFIED) {
      return Bad(Item(names.categories, i, names.indexed),
                 "must be a data category");
    }
  }
  if (!consent.has_given_at())
    return Bad(names.given, "required: when the consent was given");
  if (consent.method() == accord::v1::CONSENT_METHOD_UNSPECIFIED) {
    return Bad(names.method,
               "required: how the consent was given (written, verbal or "
               "digital)");
  }
  if (consent.recorded_by().empty())
    return Bad(names.recorded_by, "required: who recorded it");
  if (consent.has_expires_at() && FromProtoTime(consent.expires_at()) <=
                                      FromProtoTime(consent.given_at())) {
    return Bad(names.expires, absl::StrCat("must be after ", names.given));
  }
  if (consent.has_withdrawn_at() || !consent.withdrawn_by().empty()) {
    return Bad(names.withdrawn,
               "a new consent cannot already be withdrawn; record it, then "
               "withdraw it");
  }
  return absl::OkStatus();
}

}  // namespace accord::agent
