#include "linkage/normalise.h"

#include <cstdint>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace accord::linkage {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckLength(absl::string_view text, absl::string_view field) {
  if (text.size() > kMaxIdentifierBytes) {
    return FieldError(
        field, absl::StrCat("longer than ", kMaxIdentifierBytes, " bytes"));
  }
  return absl::OkStatus();
}

// Decodes one code point of strict UTF-8 at text[*pos], advancing *pos.
// Returns -1 for a malformed, overlong, surrogate or out-of-range sequence.
int32_t DecodeUtf8(absl::string_view text, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(*pos);
  int len;
  int32_t cp;
  int32_t min;
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (*pos + len > text.size()) return -1;
  for (int i = 1; i < len; ++i) {
    const uint8_t b = byte(*pos + i);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *pos += len;
  return cp;
}

// ASCII folding of U+00C0..U+017F. nullptr marks the two symbols in that
// range (× and ÷), which separate words like other punctuation.
constexpr int32_t kFoldFirst = 0x00C0;
// clang-format off
constexpr const char* kFold[] = {
    // U+00C0 À Á Â Ã Ä Å Æ Ç È É Ê Ë Ì Í Î Ï
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    // U+00D0 Ð Ñ Ò Ó Ô Õ Ö × Ø Ù Ú Û Ü Ý Þ ß
    "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "ss",
    // U+00E0 à á â ã ä å æ ç è é ê ë ì í î ï
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    // U+00F0 ð ñ ò ó ô õ ö ÷ ø ù ú û ü ý þ ÿ
    "d", "n", "o", "o", "o", "o", "o", nullptr, "o", "u", "u", "u", "u", "y", "th", "y",
    // U+0100 Ā ā Ă ă Ą ą Ć ć Ĉ ĉ Ċ ċ Č č Ď ď
    "a", "a", "a", "a", "a", "a", "c", "c", "c", "c", "c", "c", "c", "c", "d", "d",
    // U+0110 Đ đ Ē ē Ĕ ĕ Ė ė Ę ę Ě ě Ĝ ĝ Ğ ğ
    "d", "d", "e", "e", "e", "e", "e", "e", "e", "e", "e", "e", "g", "g", "g", "g",
    // U+0120 Ġ ġ Ģ ģ Ĥ ĥ Ħ ħ Ĩ ĩ Ī ī Ĭ ĭ Į į
    "g", "g", "g", "g", "h", "h", "h", "h", "i", "i", "i", "i", "i", "i", "i", "i",
    // U+0130 İ ı Ĳ ĳ Ĵ ĵ Ķ ķ ĸ Ĺ ĺ Ļ ļ Ľ ľ Ŀ
    "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l", "l", "l", "l",
    // U+0140 ŀ Ł ł Ń ń Ņ ņ Ň ň ŉ Ŋ ŋ Ō ō Ŏ ŏ
    "l", "l", "l", "n", "n", "n", "n", "n", "n", "n", "n", "n", "o", "o", "o", "o",
    // U+0150 Ő ő Œ œ Ŕ ŕ Ŗ ŗ Ř ř Ś ś Ŝ ŝ Ş ş
    "o", "o", "oe", "oe", "r", "r", "r", "r", "r", "r", "s", "s", "s", "s", "s", "s",
    // U+0160 Š š Ţ ţ Ť ť Ŧ ŧ Ũ ũ Ū ū Ŭ ŭ Ů ů
    "s", "s", "t", "t", "t", "t", "t", "t", "u", "u", "u", "u", "u", "u", "u", "u",
    // U+0170 Ű ű Ų ų Ŵ ŵ Ŷ ŷ Ÿ Ź ź Ż ż Ž ž ſ
    "u", "u", "u", "u", "w", "w", "y", "y", "y", "z", "z", "z", "z", "z", "z", "s",
};
// clang-format on
constexpr int32_t kFoldEnd =
    kFoldFirst + static_cast<int32_t>(std::size(kFold));
static_assert(kFoldEnd == 0x0180, "one entry per code point U+00C0..U+017F");

enum class Class { kLetter, kDrop, kSeparator, kKeep, kControl };

// How a code point takes part in a name; for kLetter, *fold is its ASCII.
Class Classify(int32_t cp, const char** fold) {
  if (cp < 0x80) {
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
      return Class::kControl;
    if (cp == 0x7F) return Class::kControl;
    if (absl::ascii_isalnum(static_cast<unsigned char>(cp)))
      return Class::kLetter;
    if (cp == '\'' || cp == '`') return Class::kDrop;
    return Class::kSeparator;  // whitespace, hyphen, full stop, other
                               // punctuation
  }
  if (cp < 0xA0) return Class::kControl;  // C1 controls
  if (cp >= kFoldFirst && cp < kFoldEnd) {
    *fold = kFold[cp - kFoldFirst];
    return *fold != nullptr ? Class::kLetter : Class::kSeparator;
  }
  switch (cp) {
    case 0x00AD:  // soft hyphen
    case 0x00B4:  // acute accent used as an apostrophe
    case 0x02BB:  // modifier letter turned comma (ʻokina)
    case 0x02BC:  // modifier letter apostrophe
    case 0x2018:  // left single quotation mark
    case 0x2019:  // right single quotation mark: the typographic apostrophe
    case 0x201B:  // single high-reversed-9 quotation mark
    case 0x2032:  // prime
    case 0x200B:  // zero width space
    case 0x200C:  // zero width non-joiner
    case 0x200D:  // zero width joiner
    case 0x2060:  // word joiner
    case 0xFEFF:  // byte order mark
      return Class::kDrop;
    case 0x0218:
    case 0x0219:
      *fold = "s";  // Ș ș
      return Class::kLetter;
    case 0x021A:
    case 0x021B:
      *fold = "t";  // Ț ț
      return Class::kLetter;
    case 0x1E9E:
      *fold = "ss";  // ẞ
      return Class::kLetter;
    default:
      break;
  }
  if (cp >= 0x0300 && cp <= 0x036F) return Class::kDrop;  // combining accents
  if (cp < 0x00C0) return Class::kSeparator;  // NBSP and Latin-1 symbols
  if (cp >= 0x2000 && cp <= 0x206F) return Class::kSeparator;  // spaces, dashes
  if (cp == 0x3000) return Class::kSeparator;  // ideographic space
  return Class::kKeep;
}

bool IsDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

int ToInt(absl::string_view digits) {
  int v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  return v;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

}  // namespace

absl::StatusOr<std::string> NormaliseNamePart(absl::string_view text,
                                              absl::string_view field) {
  if (auto s = CheckLength(text, field); !s.ok()) return s;
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const int32_t cp = DecodeUtf8(text, &pos);
    if (cp < 0) return FieldError(field, "not valid UTF-8");
    const char* fold = nullptr;
    switch (Classify(cp, &fold)) {
      case Class::kControl:
        return FieldError(field, "contains a control character");
      case Class::kDrop:
        continue;
      case Class::kSeparator:
        pending_space = !out.empty();
        continue;
      case Class::kLetter:
      case Class::kKeep:
        break;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    if (fold != nullptr) {
      out.append(fold);
    } else if (cp < 0x80) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(cp)));
    } else {
      out.append(text.data() + start, pos - start);
    }
  }
  return out;
}

absl::StatusOr<std::string> NormaliseFullName(absl::string_view given_names,
                                              absl::string_view family_name) {
  auto given = NormaliseNamePart(given_names, "given_name");
  if (!given.ok()) return given.status();
  auto family = NormaliseNamePart(family_name, "family_name");
  if (!family.ok()) return family.status();
  if (given->empty()) return FieldError("given_name", "has no letters");
  if (family->empty()) return FieldError("family_name", "has no letters");
  return absl::StrCat(*given, " ", *family);
}

absl::StatusOr<std::string> NormaliseDateOfBirth(absl::string_view text) {
  constexpr absl::string_view kField = "date_of_birth";
  if (auto s = CheckLength(text, kField); !s.ok()) return s;
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::string_view year, month, day;
  const size_t slash = t.find('/');
  const size_t dash = t.find('-');
  if (t.size() == 8 && IsDigits(t)) {
    year = t.substr(0, 4), month = t.substr(4, 2), day = t.substr(6, 2);
  } else if (slash != absl::string_view::npos ||
             dash != absl::string_view::npos) {
    const char sep = slash != absl::string_view::npos ? '/' : '-';
    const size_t first = t.find(sep);
    const size_t second = t.find(sep, first + 1);
    if (second == absl::string_view::npos ||
        t.find(sep, second + 1) != absl::string_view::npos) {
      return FieldError(kField,
                        "not a date (expected YYYY-MM-DD or DD/MM/YYYY)");
    }
    const absl::string_view a = t.substr(0, first);
    const absl::string_view b = t.substr(first + 1, second - first - 1);
    const absl::string_view c = t.substr(second + 1);
    if (sep == '-' && a.size() == 4) {  // YYYY-MM-DD
      year = a, month = b, day = c;
      if (month.size() != 2 || day.size() != 2) {
        return FieldError(
            kField,
            "not a date (expected YYYY-MM-DD with two-digit month and day)");
      }
    } else {  // D/M/YYYY, D-M-YYYY
      day = a, month = b, year = c;
      if (day.empty() || day.size() > 2 || month.empty() || month.size() > 2) {
        return FieldError(kField, "not a date (expected DD/MM/YYYY)");
      }
      if (year.size() != 4) {
        return FieldError(kField, "year must have four digits");
      }
    }
  } else {
    return FieldError(
        kField,
        "not a date (expected YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY or YYYYMMDD)");
  }
  if (!IsDigits(year) || !IsDigits(month) || !IsDigits(day)) {
    return FieldError(kField, "not a date (non-digit in year, month or day)");
  }
  const int y = ToInt(year), m = ToInt(month), d = ToInt(day);
  if (y < 1870 || y > 2199)
    return FieldError(kField, "year out of range 1870..2199");
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return FieldError(kField, "not a real calendar date");
  }
  char buf[11];
  buf[0] = static_cast<char>('0' + y / 1000);
  buf[1] = static_cast<char>('0' + y / 100 % 10);
  buf[2] = static_cast<char>('0' + y / 10 % 10);
  buf[3] = static_cast<char>('0' + y % 10);
  buf[4] = '-';
  buf[5] = static_cast<char>('0' + m / 10);
  buf[6] = static_cast<char>('0' + m % 10);
  buf[7] = '-';
  buf[8] = static_cast<char>('0' + d / 10);
  buf[9] = static_cast<char>('0' + d % 10);
  buf[10] = '\0';
  return std::string(buf, 10);
}

absl::StatusOr<std::string> NormalisePostcode(absl::string_view text) {
  constexpr absl::string_view kField = "postcode";
  if (auto s = CheckLength(text, kField); !s.ok()) return s;
  std::string compact;
  std::string shape;  // 'A' for a letter, '9' for a digit
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isspace(u)) continue;
    if (absl::ascii_isalpha(u)) {
      compact.push_back(absl::ascii_toupper(u));
      shape.push_back('A');
    } else if (absl::ascii_isdigit(u)) {
      compact.push_back(c);
      shape.push_back('9');
    } else {
      return FieldError(kField, "may only hold letters, digits and spaces");
    }
  }
  if (compact == "GIR0AA") return std::string("GIR 0AA");
  if (compact.size() < 5 || compact.size() > 7) {
    return FieldError(kField, "not a full UK postcode (expected e.g. LS6 2AB)");
  }
  const absl::string_view inward =
      absl::string_view(shape).substr(shape.size() - 3);
  const absl::string_view outward =
      absl::string_view(shape).substr(0, shape.size() - 3);
  const bool outward_ok = outward == "A9" || outward == "A99" ||
                          outward == "AA9" || outward == "AA99" ||
                          outward == "A9A" || outward == "AA9A";
  if (!outward_ok || inward != "9AA") {
    return FieldError(kField, "not a full UK postcode (expected e.g. LS6 2AB)");
  }
  return absl::StrCat(absl::string_view(compact).substr(0, compact.size() - 3),
                      " ",
                      absl::string_view(compact).substr(compact.size() - 3));
}

absl::StatusOr<std::string> NormaliseNhsNumber(absl::string_view text) {
  constexpr absl::string_view kField = "nhs_number";
  if (auto s = CheckLength(text, kField); !s.ok()) return s;
  std::string digits;
  for (char c : text) {
    if (c == ' ' || c == '-') continue;
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return FieldError(kField, "may only hold digits, spaces and dashes");
    }
    digits.push_back(c);
  }
  if (digits.size() != 10) return FieldError(kField, "must have 10 digits");
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (digits[i] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  if (check == 10 || check != digits[9] - '0') {
    return FieldError(kField, "check digit does not match (mistyped number?)");
  }
  return digits;
}

}  // namespace accord::linkage
