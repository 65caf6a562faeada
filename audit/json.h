// A small strict JSON reader and writer for the audit log's export and proof
// formats. The reader is a cursor over one JSON text (no DOM): callers walk
// objects member by member, so a million-line export is parsed without
// allocating a tree per line. Errors name the byte offset.
//
// Thread-compatible: a JsonCursor belongs to one thread.
#ifndef ACCORD_AUDIT_JSON_H_
#define ACCORD_AUDIT_JSON_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace accord::audit {

// Appends `s` as a quoted JSON string (escaping quotes, backslashes and
// control characters; other bytes are copied).
void AppendJsonString(std::string* out, absl::string_view s);

class JsonCursor {
 public:
  explicit JsonCursor(absl::string_view text) : text_(text) {}

  // Walks an object: `member` is called with each key, positioned at the
  // value, and must consume it. Duplicate keys are left to the caller. The
  // key is valid only until `member` consumes its value.
  // member: absl::Status(absl::string_view key)
  template <typename Member>
  [[nodiscard]] absl::Status Object(Member&& member);
  // Walks an array: `element` must consume one value.
  // element: absl::Status()
  template <typename Element>
  [[nodiscard]] absl::Status Array(Element&& element);

  [[nodiscard]] absl::Status String(std::string* out);
  // A string as a view into the text when it holds no escapes, else decoded
  // into *storage (and *out views that).
  [[nodiscard]] absl::Status StringView(absl::string_view* out,
                                        std::string* storage);
  [[nodiscard]] absl::Status Uint(uint64_t* out);  // a non-negative integer
  [[nodiscard]] absl::Status Bool(bool* out);
  // Consumes `null` and returns true, or returns false without consuming.
  bool Null();
  // True when the next value is a string.
  bool AtString();
  [[nodiscard]] absl::Status SkipValue();
  // OK when only whitespace remains.
  [[nodiscard]] absl::Status End();

  absl::Status Error(absl::string_view what) const;

 private:
  // The closing quote of a string starting at pos_ (just after its opening
  // quote) when the string holds no escape or control character.
  const char* PlainStringEnd() const;
  absl::Status ObjectOpen();
  absl::Status ObjectClose();
  absl::Status ArrayOpen();
  absl::Status ArrayClose();
  void SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  absl::Status SkipValue(int depth);
  absl::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

template <typename Member>
absl::Status JsonCursor::Object(Member&& member) {
  if (auto s = ObjectOpen(); !s.ok()) return s;
  if (!Consume('}')) {
    std::string storage;
    absl::string_view key;
    do {
      if (auto s = StringView(&key, &storage); !s.ok()) return s;
      if (!Consume(':')) return Error("expected ':'");
      if (auto s = member(key); !s.ok()) return s;
    } while (Consume(','));
    return ObjectClose();
  }
  --depth_;
  return absl::OkStatus();
}

template <typename Element>
absl::Status JsonCursor::Array(Element&& element) {
  if (auto s = ArrayOpen(); !s.ok()) return s;
  if (!Consume(']')) {
    do {
      if (auto s = element(); !s.ok()) return s;
    } while (Consume(','));
    return ArrayClose();
  }
  --depth_;
  return absl::OkStatus();
}

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_JSON_H_
