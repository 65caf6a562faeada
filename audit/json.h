// A small strict JSON reader and writer for the audit log's export and proof
// formats. The reader is a cursor over one JSON text (no DOM): callers walk
// objects member by member, so a million-line export is parsed without
// allocating a tree per line. Errors name the byte offset.
//
// Thread-compatible: a JsonCursor belongs to one thread.
#ifndef ACCORD_AUDIT_JSON_H_
#define ACCORD_AUDIT_JSON_H_

#include <cstdint>
#include <functional>
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
  // value, and must consume it. Duplicate keys are left to the caller.
  [[nodiscard]] absl::Status Object(
      const std::function<absl::Status(absl::string_view key)>& member);
  // Walks an array: `element` must consume one value.
  [[nodiscard]] absl::Status Array(
      const std::function<absl::Status()>& element);

  [[nodiscard]] absl::Status String(std::string* out);
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
  void SkipSpace();
  bool Consume(char c);
  absl::Status SkipValue(int depth);
  absl::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_JSON_H_
