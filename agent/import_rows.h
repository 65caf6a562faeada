// Internal to bulk import (agent/import*.cc): the import columns, one row's
// cells, and the row builder the CSV and JSON Lines parsers share. Not a
// public header: include agent/import.h.
#ifndef ACCORD_AGENT_IMPORT_ROWS_H_
#define ACCORD_AGENT_IMPORT_ROWS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "agent/import.h"

namespace accord::agent::import_internal {

using Cells = std::vector<std::pair<std::string, std::string>>;

// Every import column: subject_id, then the field catalogue in its order,
// then the record, consent and engagement columns.
const std::vector<absl::string_view>& Columns();
bool IsColumn(absl::string_view name);
// The columns whose cells are ';'-separated lists.
bool IsListColumn(absl::string_view name);
// The index of an import column in Columns(), -1 for none.
int ColumnIndex(absl::string_view name);
// "Given Name", "given-name" and "GIVEN_NAME" all name given_name.
std::string ColumnKey(absl::string_view header);
// Drops a UTF-8 byte-order mark (spreadsheets' "CSV UTF-8").
void StripBom(absl::string_view* text);
// InvalidArgument "column: what".
absl::Status Bad(absl::string_view column, absl::string_view what);

// The cells of one row by column; absent and empty cells read as "". Holds
// views of the cells' text, which must outlive it.
class RowCells {
 public:
  RowCells() : values_(Columns().size()) {}
  void Clear() {
    for (auto& v : values_) v = absl::string_view();
  }
  // An empty value leaves the column absent.
  void Set(int column, absl::string_view value) {
    if (column >= 0 && !value.empty()) values_[column] = value;
  }
  absl::string_view Get(absl::string_view column) const {
    return At(ColumnIndex(column));
  }
  absl::string_view At(int column) const {
    return column < 0 ? absl::string_view() : values_[column];
  }
  bool AnyWithPrefix(absl::string_view prefix) const {
    for (size_t i = 0; i < values_.size(); ++i) {
      if (!values_[i].empty() && absl::StartsWith(Columns()[i], prefix))
        return true;
    }
    return false;
  }

 private:
  std::vector<absl::string_view> values_;
};

// Validates one row's cells into `out`, a new row or one whose storage is
// reused: everything it held is replaced.
absl::Status FillRow(uint64_t row, const RowCells& c,
                     const ImportOptions& options, ImportedRow* out);

// The two file formats (import_csv.cc, import_jsonl.cc).
std::unique_ptr<RowParser> NewCsvParser(const ImportOptions& options);
std::unique_ptr<RowParser> NewJsonLinesParser(const ImportOptions& options);

}  // namespace accord::agent::import_internal

#endif  // ACCORD_AGENT_IMPORT_ROWS_H_
