// The text the agent accepts from the partner's own systems. Every string
// that arrives through the local API or in an import file is checked here
// before anything is stored, so that what the agent holds can always be read
// back (a stored protobuf with invalid UTF-8 in a string does not parse) and
// shown on a terminal or in a spreadsheet without escape sequences in it.
//
// Two kinds of text:
//  - short text: identifiers (local ids of people, records, consents),
//    names, roles, services, purposes, dates, codes — every field not listed
//    below. Valid UTF-8 with no control character at all.
//  - free text: a record's text, a referral's case summary, a status
//    reason, a no-consent justification, an address and safe-contact
//    instructions. Valid UTF-8 whose only control characters are line
//    breaks (LF, or CR LF as Windows writes them) and tabs.
// Control characters are C0 (U+0000-U+001F), DEL (U+007F) and C1
// (U+0080-U+009F, which some terminals obey as escapes).
//
// Pure functions; thread-safe.
#ifndef ACCORD_AGENT_INPUT_TEXT_H_
#define ACCORD_AGENT_INPUT_TEXT_H_

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace accord::agent {

enum class TextKind { kShort, kFree };

// Why `text` is not acceptable as `kind` (e.g. "is not valid UTF-8"), or
// nullptr when it is. Never quotes the text.
[[nodiscard]] const char* TextProblem(absl::string_view text, TextKind kind);

// The kind of text a field of the field catalogue holds (address and
// safe_contact are free text).
TextKind SubjectFieldText(absl::string_view field);

// Checks every string of a local API request, at any depth (map keys and
// values included): free text where listed above, short text everywhere
// else. InvalidArgument naming the first field at fault by its path, e.g.
// "field record.text is not valid UTF-8".
[[nodiscard]] absl::Status CheckRequestText(
    const google::protobuf::Message& request);

// A local API request as a whole: its text as above, then the schema's
// rules (ValidateMessage, runtime/textproto.h).
[[nodiscard]] absl::Status ValidateLocalRequest(
    const google::protobuf::Message& request);

}  // namespace accord::agent

#endif  // ACCORD_AGENT_INPUT_TEXT_H_
