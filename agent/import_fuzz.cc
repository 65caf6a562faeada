// libFuzzer target over the import parsers (CSV and JSON Lines). Checks that
// no input crashes them, that every data row is either accepted or rejected
// (never lost), that cutting the input into chunks anywhere gives the same
// rows as feeding it whole, and that whatever a row carries reads back once
// serialised (the store could keep it) and holds no control character but
// line breaks and tabs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/import.h"
#include "agent/input_text.h"

namespace {

using accord::agent::ImportedRow;
using accord::agent::TextKind;
using accord::agent::TextProblem;

template <typename Msg>
void ReadsBack(const Msg& m) {
  Msg back;
  if (!back.ParseFromString(m.SerializeAsString())) abort();
}

void ReadsBack(const ImportedRow& r) {
  if (TextProblem(r.subject_id, TextKind::kShort) != nullptr) abort();
  for (const auto& [name, value] : r.subject_fields) {
    if (TextProblem(value, TextKind::kFree) != nullptr) abort();
  }
  if (r.record) ReadsBack(*r.record);
  if (r.consent) ReadsBack(*r.consent);
  if (r.engagement) ReadsBack(*r.engagement);
}

using accord::agent::ImportOptions;
using accord::agent::RowParser;
using accord::agent::RowProblem;

struct Outcome {
  bool ok = true;
  uint64_t read = 0;
  std::vector<uint64_t> rows, rejected;
};

Outcome Parse(accord::v1::ImportFormat format, absl::string_view text,
              size_t chunk) {
  ImportOptions options;
  options.max_row_bytes = 4096;
  auto parser = RowParser::Create(format, options);
  if (!parser.ok()) abort();
  std::vector<ImportedRow> rows;
  std::vector<RowProblem> rejected;
  Outcome out;
  for (size_t i = 0; i < text.size() && out.ok; i += chunk)
    out.ok = (*parser)->Feed(text.substr(i, chunk), &rows, &rejected).ok();
  if (out.ok) out.ok = (*parser)->Finish(&rows, &rejected).ok();
  out.read = (*parser)->rows_read();
  for (const auto& r : rows) {
    out.rows.push_back(r.row);
    ReadsBack(r);
  }
  for (const auto& r : rejected) out.rejected.push_back(r.row);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto format = (data[0] & 1) ? accord::v1::IMPORT_FORMAT_JSONL
                                    : accord::v1::IMPORT_FORMAT_CSV;
  const size_t chunk = 1 + data[1] % 16;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 2,
                               size - 2);
  const Outcome whole = Parse(format, text, text.size() + 1);
  const Outcome cut = Parse(format, text, chunk);
  if (whole.ok != cut.ok) abort();
  if (!whole.ok) return 0;
  if (whole.rows != cut.rows || whole.rejected != cut.rejected) abort();
  if (whole.read != whole.rows.size() + whole.rejected.size()) abort();
  return 0;
}
