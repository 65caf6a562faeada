// Text from the audit log (or any record) made safe to show a person.
//
// Audit entries keep what callers sent, byte for byte, including what a
// refused request carried: a purpose of "\x1b[2K\r#0 allow ..." is evidence
// and stays in the log. Printed raw it would rewrite the reader's terminal
// (erase the line, move the cursor) and forge the entry they think they see;
// opened in a spreadsheet, a cell starting with '=' runs as a formula. Every
// human-facing output (accordctl's text, CSV exports, readable reports)
// passes text through these functions first.
//
// Pure functions, thread-safe.
#ifndef ACCORD_AUDIT_PRINTABLE_H_
#define ACCORD_AUDIT_PRINTABLE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace accord::audit {

// One line of text as visible escapes: C0 controls and DEL as \xNN (\t, \n
// and \r as such), C1 controls (U+0080-U+009F, which some terminals obey)
// and the bidirectional overrides and isolates (U+202A-U+202E,
// U+2066-U+2069, which reorder what follows) as \uNNNN, and each byte of
// invalid UTF-8 as \xNN. Everything else, backslashes included, is kept, so
// escaping twice is the same as escaping once.
std::string Printable(absl::string_view text);

// Multi-line free text (a record, a report): as Printable, but newlines and
// tabs are kept, and every line after the first starts with `indent` so the
// text cannot pass itself off as the lines around it.
std::string PrintableBlock(absl::string_view text, absl::string_view indent);

// A CSV cell's text that a spreadsheet shows as text: Printable, and when the
// original starts with '=', '+', '-', '@', a tab or a carriage return (what
// spreadsheets read as a formula) a leading apostrophe.
std::string SpreadsheetText(absl::string_view text);

// The text as valid UTF-8, each byte of an invalid sequence replaced by
// U+FFFD: for text taken from elsewhere (a status message quoting what a
// caller sent) into an audit entry, whose text fields must be UTF-8.
std::string ValidUtf8(absl::string_view text);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_PRINTABLE_H_
