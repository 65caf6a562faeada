// Loading and validating protobuf messages: configuration files, agreement
// files and incoming requests share one validator.
//
// The validator reads the `(accord.v1.field)` annotations of proto/: required
// fields must be present, string/bytes/repeated fields respect `max_len`
// (default 4096 bytes for strings, 1000 elements for repeated fields), and
// enum fields must hold a known value other than `*_UNSPECIFIED` unless
// `allow_unspecified`. Strings must be valid UTF-8 without control characters
// (tab, CR and LF allowed) and match their `format` (subject token,
// identifier). For text files every error names file:line:column and
// the field path (e.g. `rules[2].purposes`). Thread-safe (pure functions).
#ifndef ACCORD_RUNTIME_TEXTPROTO_H_
#define ACCORD_RUNTIME_TEXTPROTO_H_

#include <google/protobuf/message.h>

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace accord {

// Where the fields of a parsed text file are, for checks made after parsing
// (ranges, files that must exist): paths such as "listen_address",
// "group_commit.max_batch" or "agreement_files[1]".
class TextLocations {
 public:
  // True when the field is written in the file, even with its default value
  // (which proto3 cannot tell from absent).
  bool Has(absl::string_view path) const;
  // "file:line:column" of the field (1-based), or "file" when it is not
  // written there.
  std::string Where(absl::string_view path) const;

 private:
  friend absl::Status ParseTextProto(absl::string_view text,
                                     const std::string& name,
                                     google::protobuf::Message* msg,
                                     TextLocations* locations);
  std::string name_;
  std::map<std::string, std::pair<int, int>, std::less<>> at_;
};

// Parses protobuf text format into `msg` and validates it. `name` is used in
// error messages (normally the file path). `locations`, when given, learns
// where each field is.
[[nodiscard]] absl::Status ParseTextProto(absl::string_view text,
                                          const std::string& name,
                                          google::protobuf::Message* msg,
                                          TextLocations* locations = nullptr);

// Reads `path` and parses it as above.
[[nodiscard]] absl::Status LoadTextProto(const std::string& path,
                                         google::protobuf::Message* msg,
                                         TextLocations* locations = nullptr);

// Validates an in-memory message (e.g. a gRPC request). Errors name the field
// path and are InvalidArgument.
[[nodiscard]] absl::Status ValidateMessage(
    const google::protobuf::Message& msg);

// Resolves `path` against the directory holding `relative_to` unless it is
// absolute.
std::string ResolvePath(const std::string& relative_to,
                        const std::string& path);

}  // namespace accord

#endif  // ACCORD_RUNTIME_TEXTPROTO_H_
