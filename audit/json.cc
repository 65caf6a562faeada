#include "audit/json.h"

#include <cctype>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace accord::audit {
namespace {
constexpr int kMaxDepth = 32;

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

void AppendJsonString(std::string* out, absl::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of plain bytes
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

absl::Status JsonCursor::Error(absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat("JSON at byte ", pos_, ": ", what));
}

bool JsonCursor::AtString() {
  SkipSpace();
  return pos_ < text_.size() && text_[pos_] == '"';
}

bool JsonCursor::Null() {
  SkipSpace();
  if (text_.substr(pos_, 4) == "null") {
    pos_ += 4;
    return true;
  }
  return false;
}

absl::Status JsonCursor::ObjectOpen() {
  if (!Consume('{')) return Error("expected an object");
  if (++depth_ > kMaxDepth) return Error("nested too deeply");
  return absl::OkStatus();
}

absl::Status JsonCursor::ObjectClose() {
  if (!Consume('}')) return Error("expected ',' or '}'");
  --depth_;
  return absl::OkStatus();
}

absl::Status JsonCursor::ArrayOpen() {
  if (!Consume('[')) return Error("expected an array");
  if (++depth_ > kMaxDepth) return Error("nested too deeply");
  return absl::OkStatus();
}

absl::Status JsonCursor::ArrayClose() {
  if (!Consume(']')) return Error("expected ',' or ']'");
  --depth_;
  return absl::OkStatus();
}

const char* JsonCursor::PlainStringEnd() const {
  const char* p = text_.data() + pos_;
  const char* end = text_.data() + text_.size();
  const char* q = static_cast<const char*>(std::memchr(p, '"', end - p));
  if (q == nullptr) return nullptr;
  // No early exit: this loop vectorises.
  bool plain = true;
  for (const char* x = p; x < q; ++x) {
    const unsigned char c = static_cast<unsigned char>(*x);
    plain &= (c >= 0x20) & (c != '\\');
  }
  return plain ? q : nullptr;
}

absl::Status JsonCursor::StringView(absl::string_view* out,
                                    std::string* storage) {
  SkipSpace();
  if (pos_ < text_.size() && text_[pos_] == '"') {
    ++pos_;
    const char* q = PlainStringEnd();
    --pos_;
    if (q != nullptr) {
      const size_t begin = pos_ + 1;
      const size_t len = static_cast<size_t>(q - (text_.data() + begin));
      *out = text_.substr(begin, len);
      pos_ = begin + len + 1;
      return absl::OkStatus();
    }
  }
  if (auto s = String(storage); !s.ok()) return s;
  *out = *storage;
  return absl::OkStatus();
}

absl::Status JsonCursor::String(std::string* out) {
  if (!Consume('"')) return Error("expected a string");
  if (const char* q = PlainStringEnd(); q != nullptr) {
    const size_t len = static_cast<size_t>(q - (text_.data() + pos_));
    out->assign(text_.data() + pos_, len);
    pos_ += len + 1;
    return absl::OkStatus();
  }
  out->clear();
  while (true) {
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\' &&
           static_cast<unsigned char>(text_[pos_]) >= 0x20) {
      ++pos_;
    }
    out->append(text_.data() + start, pos_ - start);
    if (pos_ >= text_.size()) return Error("unterminated string");
    const char c = text_[pos_++];
    if (c == '"') return absl::OkStatus();
    if (c != '\\') return Error("control character in string");
    if (pos_ >= text_.size()) return Error("unterminated escape");
    const char e = text_[pos_++];
    switch (e) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        auto read4 = [&](uint32_t* v) {
          if (pos_ + 4 > text_.size()) return false;
          *v = 0;
          for (int i = 0; i < 4; ++i) {
            const int h = HexValue(text_[pos_++]);
            if (h < 0) return false;
            *v = (*v << 4) | h;
          }
          return true;
        };
        uint32_t cp;
        if (!read4(&cp)) return Error("bad \\u escape");
        if (cp >= 0xd800 && cp < 0xdc00) {
          uint32_t lo;
          if (text_.substr(pos_, 2) != "\\u")
            return Error("unpaired surrogate");
          pos_ += 2;
          if (!read4(&lo) || lo < 0xdc00 || lo >= 0xe000)
            return Error("unpaired surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          return Error("unpaired surrogate");
        }
        AppendUtf8(out, cp);
        break;
      }
      default:
        return Error("bad escape");
    }
  }
}

absl::Status JsonCursor::Uint(uint64_t* out) {
  SkipSpace();
  const size_t start = pos_;
  uint64_t v = 0;
  while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
    const uint64_t d = text_[pos_] - '0';
    if (v > (UINT64_MAX - d) / 10) return Error("integer out of range");
    v = v * 10 + d;
    ++pos_;
  }
  if (pos_ == start) return Error("expected a non-negative integer");
  if (pos_ - start > 1 && text_[start] == '0') return Error("leading zero");
  if (pos_ < text_.size() &&
      (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
    return Error("expected an integer");
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status JsonCursor::Bool(bool* out) {
  SkipSpace();
  if (text_.substr(pos_, 4) == "true") {
    pos_ += 4;
    *out = true;
    return absl::OkStatus();
  }
  if (text_.substr(pos_, 5) == "false") {
    pos_ += 5;
    *out = false;
    return absl::OkStatus();
  }
  return Error("expected true or false");
}

absl::Status JsonCursor::SkipValue() { return SkipValue(depth_); }

absl::Status JsonCursor::SkipValue(int depth) {
  if (depth > kMaxDepth) return Error("nested too deeply");
  SkipSpace();
  if (pos_ >= text_.size()) return Error("expected a value");
  const char c = text_[pos_];
  if (c == '"') {
    std::string ignored;
    return String(&ignored);
  }
  if (c == '{')
    return Object([&](absl::string_view) { return SkipValue(depth + 1); });
  if (c == '[') return Array([&] { return SkipValue(depth + 1); });
  if (Null()) return absl::OkStatus();
  if (c == 't' || c == 'f') {
    bool b;
    return Bool(&b);
  }
  // A number: sign, digits, fraction, exponent.
  const size_t start = pos_;
  while (pos_ < text_.size() &&
         (std::isdigit(static_cast<unsigned char>(text_[pos_])) ||
          text_[pos_] == '-' || text_[pos_] == '+' || text_[pos_] == '.' ||
          text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
  }
  if (pos_ == start) return Error("expected a value");
  return absl::OkStatus();
}

absl::Status JsonCursor::End() {
  SkipSpace();
  if (pos_ != text_.size()) return Error("trailing characters");
  return absl::OkStatus();
}

}  // namespace accord::audit
