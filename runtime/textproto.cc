#include "runtime/textproto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "accord/v1/options.pb.h"
#include "runtime/crypto.h"

namespace accord {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::TextFormat;

constexpr uint32_t kDefaultMaxString = 4096;
constexpr uint32_t kDefaultMaxRepeated = 1000;
constexpr size_t kMaxErrors = 20;

// Collects parse errors as "file:line:col: message". The text-format parser
// reports a bad value at the token after it, so for unknown enum and field
// names the position is moved back to the offending word.
class Collector : public google::protobuf::io::ErrorCollector {
 public:
  Collector(std::string name, absl::string_view text)
      : name_(std::move(name)), text_(text) {}
  void AddError(int line, int column, const std::string& message) override {
    RelocateToWord(message, &line, &column);
    errors_.push_back(
        absl::StrCat(name_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  void RelocateToWord(const std::string& message, int* line,
                      int* column) const {
    const size_t open = message.find('"');
    if (open == std::string::npos) return;
    const size_t close = message.find('"', open + 1);
    if (close == std::string::npos) return;
    const std::string word = message.substr(open + 1, close - open - 1);
    if (word.empty()) return;
    // Offset of the reported position.
    size_t offset = 0;
    for (int l = 0; l < *line && offset < text_.size(); ++l) {
      const size_t nl = text_.find('\n', offset);
      if (nl == absl::string_view::npos) return;
      offset = nl + 1;
    }
    offset = std::min(text_.size(), offset + static_cast<size_t>(*column));
    const size_t at = text_.substr(0, offset).rfind(word);
    if (at == absl::string_view::npos) return;
    int l = 0;
    size_t line_start = 0;
    for (size_t i = 0; i < at; ++i) {
      if (text_[i] == '\n') {
        ++l;
        line_start = i + 1;
      }
    }
    *line = l;
    *column = static_cast<int>(at - line_start);
  }

  std::string name_;
  absl::string_view text_;
  std::vector<std::string> errors_;
};

// Why `v` is not acceptable text of `format`, or null. Never quotes the
// value: requests may carry record content.
const char* CheckText(const std::string& v, accord::v1::Format format) {
  size_t i = 0;
  const size_t n = v.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        return "contains a control character";
      }
      ++i;
      continue;
    }
    // Multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
    // nothing above U+10FFFF).
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return "is not valid UTF-8";
    }
    if (i + len > n) return "is not valid UTF-8";
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(v[i + k]);
      if ((cc & 0xc0) != 0x80) return "is not valid UTF-8";
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return "is not valid UTF-8";
    }
    i += len;
  }
  switch (format) {
    case accord::v1::FORMAT_SUBJECT_TOKEN:
      if (v.size() != 64) {
        return "must be 64 lower-case hex characters (a subject token)";
      }
      for (char c : v) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
          return "must be 64 lower-case hex characters (a subject token)";
        }
      }
      break;
    case accord::v1::FORMAT_IDENTIFIER:
      for (char c : v) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.' ||
              c == ':' || c == '/' || c == '@')) {
          return "must be an identifier (letters, digits and -_.:/@ only)";
        }
      }
      break;
    default:
      break;
  }
  return nullptr;
}

// Walks a message and collects errors. `where` locates the message in a text
// file (line/column of its opening, 0-based) when a ParseInfoTree exists.
class Validator {
 public:
  explicit Validator(std::string name) : name_(std::move(name)) {}

  void Check(const Message& msg, const std::string& path,
             const TextFormat::ParseInfoTree* tree, int line, int col) {
    const Descriptor* d = msg.GetDescriptor();
    const Reflection* r = msg.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      if (errors_.size() >= kMaxErrors) return;
      const FieldDescriptor* f = d->field(i);
      const accord::v1::FieldRules& rules =
          f->options().GetExtension(accord::v1::field);
      const std::string fpath =
          path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
      if (f->is_repeated()) {
        const int n = r->FieldSize(msg, f);
        if (rules.required() && n == 0) {
          Add(tree, nullptr, -1, line, col, fpath, "is required");
          continue;
        }
        const uint32_t max =
            rules.max_len() ? rules.max_len() : kDefaultMaxRepeated;
        if (static_cast<uint32_t>(n) > max) {
          Add(tree, f, 0, line, col, fpath,
              absl::StrCat("has ", n, " elements; at most ", max));
          continue;
        }
        for (int j = 0; j < n; ++j) {
          CheckElement(msg, f, j, absl::StrCat(fpath, "[", j, "]"), rules, tree,
                       line, col);
        }
        continue;
      }
      const bool present =
          f->has_presence() ? r->HasField(msg, f) : HasNonDefault(msg, f);
      if (!present) {
        if (rules.required())
          Add(tree, nullptr, -1, line, col, fpath, "is required");
        // A singular enum without presence holds 0: UNSPECIFIED is an error.
        if (!rules.required() && f->type() == FieldDescriptor::TYPE_ENUM &&
            !f->containing_oneof() && !rules.allow_unspecified()) {
          Add(tree, nullptr, -1, line, col, fpath,
              absl::StrCat("must be set (", f->enum_type()->value(0)->name(),
                           " is not a valid value)"));
        }
        continue;
      }
      CheckElement(msg, f, -1, fpath, rules, tree, line, col);
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  static bool HasNonDefault(const Message& msg, const FieldDescriptor* f) {
    const Reflection* r = msg.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return !r->GetString(msg, f).empty();
      case FieldDescriptor::CPPTYPE_ENUM:
        return r->GetEnumValue(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->GetBool(msg, f);
      case FieldDescriptor::CPPTYPE_INT32:
        return r->GetInt32(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_INT64:
        return r->GetInt64(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_UINT32:
        return r->GetUInt32(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_UINT64:
        return r->GetUInt64(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return r->GetDouble(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_FLOAT:
        return r->GetFloat(msg, f) != 0;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return r->HasField(msg, f);
    }
    return false;
  }

  void CheckElement(const Message& msg, const FieldDescriptor* f, int index,
                    const std::string& fpath,
                    const accord::v1::FieldRules& rules,
                    const TextFormat::ParseInfoTree* tree, int line, int col) {
    const Reflection* r = msg.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        if (f->is_map()) break;
        std::string scratch;
        const std::string& v =
            rep ? r->GetRepeatedStringReference(msg, f, index, &scratch)
                : r->GetStringReference(msg, f, &scratch);
        // On a repeated field max_len bounds the count; elements get the
        // default.
        const uint32_t limit = (!f->is_repeated() && rules.max_len())
                                   ? rules.max_len()
                                   : kDefaultMaxString;
        if (v.size() > limit) {
          Add(tree, f, rep ? index : -1, line, col, fpath,
              absl::StrCat("is ", v.size(), " bytes long; at most ", limit));
        } else if (rules.required() && v.empty()) {
          Add(tree, f, rep ? index : -1, line, col, fpath, "must not be empty");
        } else if (f->type() == FieldDescriptor::TYPE_STRING) {
          if (const char* what = CheckText(v, rules.format())) {
            Add(tree, f, rep ? index : -1, line, col, fpath, what);
          }
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int v = rep ? r->GetRepeatedEnumValue(msg, f, index)
                          : r->GetEnumValue(msg, f);
        if (f->enum_type()->FindValueByNumber(v) == nullptr) {
          Add(tree, f, rep ? index : -1, line, col, fpath,
              absl::StrCat("has unknown value ", v, " for ",
                           f->enum_type()->full_name()));
        } else if (v == 0 && !rules.allow_unspecified()) {
          Add(tree, f, rep ? index : -1, line, col, fpath,
              absl::StrCat("must not be ", f->enum_type()->value(0)->name()));
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        if (f->is_map()) {
          // Map entries: check key/value string lengths.
          const Message& entry = r->GetRepeatedMessage(msg, f, index);
          Check(entry, fpath, nullptr, line, col);
          break;
        }
        const Message& sub =
            rep ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f);
        const TextFormat::ParseInfoTree* subtree =
            tree ? tree->GetTreeForNested(f, rep ? index : -1) : nullptr;
        int sl = line, sc = col;
        if (tree) {
          const auto loc = tree->GetLocation(f, rep ? index : -1);
          if (loc.line >= 0) {
            sl = loc.line;
            sc = loc.column;
          }
        }
        Check(sub, fpath, subtree, sl, sc);
        break;
      }
      default:
        break;
    }
  }

  // Records an error at the field's own location when it appears in the file,
  // else at the enclosing message's.
  void Add(const TextFormat::ParseInfoTree* tree, const FieldDescriptor* f,
           int index, int line, int col, const std::string& fpath,
           const std::string& what) {
    if (errors_.size() >= kMaxErrors) return;
    if (tree && f) {
      const auto loc = tree->GetLocation(f, index);
      if (loc.line >= 0) {
        line = loc.line;
        col = loc.column;
      }
    }
    if (name_.empty()) {
      errors_.push_back(absl::StrCat("field ", fpath, " ", what));
    } else {
      errors_.push_back(absl::StrCat(name_, ":", line + 1, ":", col + 1,
                                     ": field ", fpath, " ", what));
    }
  }

  std::string name_;
  std::vector<std::string> errors_;
};

// Records where every field written in the file is, by path.
void Locate(const Message& msg, const TextFormat::ParseInfoTree* tree,
            const std::string& path,
            std::map<std::string, std::pair<int, int>, std::less<>>* at) {
  if (tree == nullptr) return;
  const Descriptor* d = msg.GetDescriptor();
  const Reflection* r = msg.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) continue;
    const std::string fpath =
        path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : 1;
    for (int j = 0; j < n; ++j) {
      const int index = f->is_repeated() ? j : -1;
      const auto loc = tree->GetLocation(f, index);
      if (loc.line < 0) continue;
      const std::string epath =
          f->is_repeated() ? absl::StrCat(fpath, "[", j, "]") : fpath;
      (*at)[epath] = {loc.line, loc.column};
      if (f->is_repeated() && j == 0) (*at)[fpath] = {loc.line, loc.column};
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& sub = f->is_repeated() ? r->GetRepeatedMessage(msg, f, j)
                                              : r->GetMessage(msg, f);
        Locate(sub, tree->GetTreeForNested(f, index), epath, at);
      }
    }
  }
}

absl::Status Join(const std::vector<std::string>& errors) {
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace

bool TextLocations::Has(absl::string_view path) const {
  return at_.find(path) != at_.end();
}

std::string TextLocations::Where(absl::string_view path) const {
  auto it = at_.find(path);
  if (it == at_.end()) return name_;
  return absl::StrCat(name_, ":", it->second.first + 1, ":",
                      it->second.second + 1);
}

absl::Status ParseTextProto(absl::string_view text, const std::string& name,
                            Message* msg, TextLocations* locations) {
  TextFormat::Parser parser;
  Collector collector(name, text);
  parser.RecordErrorsTo(&collector);
  TextFormat::ParseInfoTree tree;
  parser.WriteLocationsTo(&tree);
  msg->Clear();
  if (!parser.ParseFromString(std::string(text), msg)) {
    if (collector.errors().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not valid text format"));
    }
    return Join(collector.errors());
  }
  Validator v(name);
  v.Check(*msg, "", &tree, 0, 0);
  if (!v.errors().empty()) return Join(v.errors());
  if (locations != nullptr) {
    locations->name_ = name;
    locations->at_.clear();
    Locate(*msg, &tree, "", &locations->at_);
  }
  return absl::OkStatus();
}

absl::Status LoadTextProto(const std::string& path, Message* msg,
                           TextLocations* locations) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseTextProto(*text, path, msg, locations);
}

absl::Status ValidateMessage(const Message& msg) {
  Validator v("");
  v.Check(msg, "", nullptr, 0, 0);
  if (!v.errors().empty()) return Join(v.errors());
  return absl::OkStatus();
}

std::string ResolvePath(const std::string& relative_to,
                        const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const size_t slash = relative_to.rfind('/');
  if (slash == std::string::npos) return path;
  return relative_to.substr(0, slash + 1) + path;
}

}  // namespace accord
