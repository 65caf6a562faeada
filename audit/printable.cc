#include "audit/printable.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace accord::audit {
namespace {

// The length of the valid UTF-8 sequence at the start of `s` and its code
// point, or 0 when it is not one (overlong, surrogate, beyond U+10FFFF,
// truncated).
size_t DecodeUtf8(absl::string_view s, uint32_t* cp) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  size_t n;
  uint32_t min;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2, min = 0x80, *cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3, min = 0x800, *cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4, min = 0x10000, *cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(i) & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return n;
}

bool Reorders(uint32_t cp) {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void Escape(absl::string_view text, const absl::string_view* indent,
            std::string* out) {
  out->reserve(out->size() + text.size());
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    if (c < 0x80) {
      ++i;
      if (c >= 0x20 && c != 0x7f) {
        out->push_back(static_cast<char>(c));
      } else if (indent != nullptr && c == '\n') {
        out->push_back('\n');
        out->append(indent->data(), indent->size());
      } else if (indent != nullptr && c == '\t') {
        out->push_back('\t');
      } else if (c == '\n') {
        out->append("\\n");
      } else if (c == '\t') {
        out->append("\\t");
      } else if (c == '\r') {
        out->append("\\r");
      } else {
        absl::StrAppendFormat(out, "\\x%02x", c);
      }
      continue;
    }
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(text.substr(i), &cp);
    if (n == 0) {
      absl::StrAppendFormat(out, "\\x%02x", c);
      ++i;
    } else if (cp <= 0x9f || Reorders(cp)) {
      absl::StrAppendFormat(out, "\\u%04x", cp);
      i += n;
    } else {
      out->append(text.data() + i, n);
      i += n;
    }
  }
}

}  // namespace

std::string Printable(absl::string_view text) {
  std::string out;
  Escape(text, nullptr, &out);
  return out;
}

std::string PrintableBlock(absl::string_view text, absl::string_view indent) {
  std::string out;
  Escape(text, &indent, &out);
  return out;
}

std::string SpreadsheetText(absl::string_view text) {
  std::string out;
  if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' ||
                        text[0] == '@' || text[0] == '\t' || text[0] == '\r')) {
    out.push_back('\'');
  }
  Escape(text, nullptr, &out);
  return out;
}

std::string ValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp = 0;
    size_t n = static_cast<uint8_t>(text[i]) < 0x80
                   ? 1
                   : DecodeUtf8(text.substr(i), &cp);
    if (n == 0) {
      out.append("\xef\xbf\xbd");  // U+FFFD
      n = 1;
    } else {
      out.append(text.data() + i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace accord::audit
