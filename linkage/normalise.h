// Normalisation of a subject's identifiers before they are turned into
// subject tokens (linkage/tokens.h).
//
// Two partners hold the same person written differently ("Zoë O'Brien-Smith",
// "ZOE OBRIEN SMITH", "07/03/1990", "1990-03-07"); their tokens only match if
// both sides reduce each identifier to one canonical form. These functions
// are that form. Changing any of them changes every token in the partnership,
// so they are pinned by known-answer tests.
//
// Errors are InvalidArgument and start with the field name
// ("date_of_birth: ..."); they never contain the value, which is personal
// data. Pure functions, thread-safe.
#ifndef ACCORD_LINKAGE_NORMALISE_H_
#define ACCORD_LINKAGE_NORMALISE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace accord::linkage {

// Longest identifier accepted, in bytes, before normalisation.
inline constexpr size_t kMaxIdentifierBytes = 256;

// One part of a name (given names or family name), reported as `field` in
// errors. The input must be valid UTF-8. Then:
//  - Latin letters with accents and ligatures (Latin-1 Supplement, Latin
//    Extended-A, Romanian comma-below letters) fold to ASCII: é→e, ö→o,
//    ß→ss, ø→o, æ→ae, ł→l, œ→oe, þ→th; combining accents (decomposed input)
//    are dropped; ASCII letters are lower-cased.
//  - Apostrophes (' ’ ‘ ʼ ` ´), zero-width characters and soft hyphens are
//    dropped: "O’Brien" → "obrien".
//  - Whitespace and other punctuation or symbols (hyphens and dashes, full
//    stops, commas, brackets, ...) separate words: "Brien-Smith" →
//    "brien smith", "St. John" → "st john".
//  - Words are joined by a single space, without leading or trailing space.
//  - Digits and letters of other scripts are kept as written (no case
//    folding), so such names match only when written the same way.
// Control characters are refused. The result may be empty.
absl::StatusOr<std::string> NormaliseNamePart(absl::string_view text,
                                              absl::string_view field);

// The full name: normalised given names, a single space, normalised family
// name. Errors name "given_name" or "family_name"; either part normalising to
// nothing is an error.
absl::StatusOr<std::string> NormaliseFullName(absl::string_view given_names,
                                              absl::string_view family_name);

// A date of birth as YYYY-MM-DD. Accepts YYYY-MM-DD, YYYYMMDD, DD/MM/YYYY,
// D/M/YYYY, DD-MM-YYYY and D-M-YYYY (day first: UK order), with surrounding
// whitespace. The date must exist (2023-02-30 does not) and the year lie in
// 1870..2199. Two-digit years are refused as ambiguous.
absl::StatusOr<std::string> NormaliseDateOfBirth(absl::string_view text);

// A full UK postcode as "OUTWARD INWARD", e.g. "ls62ab" → "LS6 2AB". Spaces
// are removed and letters upper-cased; the shape must be one of A9, A99, AA9,
// AA99, A9A, AA9A followed by 9AA (or GIR 0AA).
absl::StatusOr<std::string> NormalisePostcode(absl::string_view text);

// An NHS number as 10 digits, spaces and dashes removed ("943 476 5919" →
// "9434765919"), with its modulus-11 check digit verified.
absl::StatusOr<std::string> NormaliseNhsNumber(absl::string_view text);

}  // namespace accord::linkage

#endif  // ACCORD_LINKAGE_NORMALISE_H_
