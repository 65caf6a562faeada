#include "agent/input_text.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Reflection;

bool IsFreeTextField(const FieldDescriptor* f) {
  static const auto* kFree = new absl::flat_hash_set<std::string>{
      "accord.v1.Record.text",
      "accord.v1.ReferralContent.case_summary",
      "accord.v1.ReferralStatus.reason",
      "accord.v1.NoConsentAssertion.justification",
  };
  return kFree->contains(f->full_name());
}

// Maps whose keys are field catalogue names and whose values are that
// field's value.
bool IsSubjectFieldMap(const FieldDescriptor* f) {
  return f->full_name() == "accord.v1.Subject.fields" ||
         f->full_name() == "accord.v1.ReferralContent.contact_details";
}

class TextWalk {
 public:
  absl::Status Walk(const google::protobuf::Message& msg,
                    const std::string& path) {
    const Descriptor* d = msg.GetDescriptor();
    const Reflection* r = msg.GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      const std::string fpath =
          path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
      if (f->is_map()) {
        if (auto s = Map(msg, f, fpath); !s.ok()) return s;
        continue;
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (f->is_repeated()) {
          for (int j = 0; j < r->FieldSize(msg, f); ++j) {
            auto s = Walk(r->GetRepeatedMessage(msg, f, j),
                          absl::StrCat(fpath, "[", j, "]"));
            if (!s.ok()) return s;
          }
        } else if (r->HasField(msg, f)) {
          if (auto s = Walk(r->GetMessage(msg, f), fpath); !s.ok()) return s;
        }
        continue;
      }
      if (f->type() != FieldDescriptor::TYPE_STRING) continue;
      const TextKind kind =
          IsFreeTextField(f) ? TextKind::kFree : TextKind::kShort;
      std::string scratch;
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(msg, f); ++j) {
          auto s = Text(r->GetRepeatedStringReference(msg, f, j, &scratch),
                        kind, absl::StrCat(fpath, "[", j, "]"));
          if (!s.ok()) return s;
        }
      } else if (auto s =
                     Text(r->GetStringReference(msg, f, &scratch), kind, fpath);
                 !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Map(const google::protobuf::Message& msg,
                   const FieldDescriptor* f, const std::string& fpath) {
    const Reflection* r = msg.GetReflection();
    const FieldDescriptor* key_field = f->message_type()->map_key();
    const FieldDescriptor* value_field = f->message_type()->map_value();
    for (int j = 0; j < r->FieldSize(msg, f); ++j) {
      const google::protobuf::Message& entry = r->GetRepeatedMessage(msg, f, j);
      const Reflection* er = entry.GetReflection();
      std::string key_text;
      if (key_field->type() == FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        key_text = er->GetStringReference(entry, key_field, &scratch);
        if (const char* why = TextProblem(key_text, TextKind::kShort)) {
          return absl::InvalidArgumentError(
              absl::StrCat("field ", fpath, " has a key that ", why));
        }
      }
      const std::string vpath = key_text.empty()
                                    ? absl::StrCat(fpath, "[", j, "]")
                                    : absl::StrCat(fpath, ".", key_text);
      if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        auto s = Walk(er->GetMessage(entry, value_field), vpath);
        if (!s.ok()) return s;
      } else if (value_field->type() == FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const TextKind kind = IsSubjectFieldMap(f) ? SubjectFieldText(key_text)
                                                   : TextKind::kShort;
        auto s = Text(er->GetStringReference(entry, value_field, &scratch),
                      kind, vpath);
        if (!s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  static absl::Status Text(const std::string& text, TextKind kind,
                           const std::string& path) {
    if (const char* why = TextProblem(text, kind)) {
      return absl::InvalidArgumentError(absl::StrCat("field ", path, " ", why));
    }
    return absl::OkStatus();
  }
};

}  // namespace

const char* TextProblem(absl::string_view text, TextKind kind) {
  const size_t n = text.size();
  // Printable ASCII, the usual case, needs no more than this pass.
  size_t i = 0;
  while (i < n && static_cast<unsigned char>(text[i]) >= 0x20 &&
         static_cast<unsigned char>(text[i]) < 0x7f) {
    ++i;
  }
  if (i == n) return nullptr;
  // The check protobuf's parser applies to every string field: what fails
  // it could be stored but never read back.
  if (!google::protobuf::internal::IsStructurallyValidUTF8(
          text.data() + i, static_cast<int>(n - i))) {
    return "is not valid UTF-8";
  }
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != 0x7f && c != 0xc2) continue;
    if (c == 0xc2) {
      // U+0080-U+009F are C2 80 to C2 9F (the UTF-8 is valid).
      const unsigned char next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) {
        return "contains a control character (U+0080-U+009F, which "
               "terminals may obey as escapes)";
      }
      continue;
    }
    if (kind == TextKind::kFree &&
        (c == '\n' || c == '\t' ||
         (c == '\r' && i + 1 < n && text[i + 1] == '\n'))) {
      continue;
    }
    return kind == TextKind::kFree
               ? "contains a control character (only line breaks and tabs "
                 "are allowed in free text)"
               : "contains a control character (none is allowed here: no "
                 "line breaks, tabs or escapes)";
  }
  return nullptr;
}

TextKind SubjectFieldText(absl::string_view field) {
  return field == "address" || field == "safe_contact" ? TextKind::kFree
                                                       : TextKind::kShort;
}

absl::Status CheckRequestText(const google::protobuf::Message& request) {
  return TextWalk().Walk(request, "");
}

absl::Status ValidateLocalRequest(const google::protobuf::Message& request) {
  // Text first: its messages name a map's entries by their keys.
  if (auto s = CheckRequestText(request); !s.ok()) return s;
  return ValidateMessage(request);
}

}  // namespace accord::agent
