// CSV import files (RFC 4180 as spreadsheets write it: comma-separated,
// cells with commas, quotes or line breaks in double quotes, "" for a quote
// inside one).
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/import_rows.h"
#include "agent/input_text.h"

namespace accord::agent::import_internal {
namespace {

class CsvParser final : public RowParser {
 public:
  explicit CsvParser(const ImportOptions& options) : options_(options) {}

  absl::Status Feed(absl::string_view chunk, std::vector<ImportedRow>* rows,
                    std::vector<RowProblem>* rejected) override {
    buf_.append(chunk.data(), chunk.size());
    size_t start = 0;
    for (size_t i = scan_; i < buf_.size(); ++i) {
      const char c = buf_[i];
      if (c == '"') {
        in_quotes_ = !in_quotes_;
      } else if (c == '\n' && !in_quotes_) {
        if (i - start > options_.max_row_bytes) return TooLong();
        if (auto s = Record(absl::string_view(buf_).substr(start, i - start),
                            rows, rejected);
            !s.ok()) {
          return s;
        }
        start = i + 1;
      }
    }
    buf_.erase(0, start);
    scan_ = buf_.size();
    if (buf_.size() > options_.max_row_bytes) return TooLong();
    return absl::OkStatus();
  }

  absl::Status TooLong() const {
    return absl::InvalidArgumentError(absl::StrCat(
        "row ", record_no_ + 1, ": longer than ", options_.max_row_bytes,
        " bytes; is a quote (\") left open?"));
  }

  absl::Status Finish(std::vector<ImportedRow>* rows,
                      std::vector<RowProblem>* rejected) override {
    if (in_quotes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", record_no_ + 1,
                       ": the file ends inside a quoted cell; is a quote (\") "
                       "left open?"));
    }
    if (!buf_.empty()) {
      if (auto s = Record(buf_, rows, rejected); !s.ok()) return s;
      buf_.clear();
    }
    if (columns_.empty()) {
      return absl::InvalidArgumentError(
          "the file is empty: a CSV import starts with a header row naming "
          "its columns");
    }
    return absl::OkStatus();
  }

 private:
  // Splits one record into cells, unquoting, into the first cells of
  // `cells` (whose strings are reused); returns how many.
  static size_t Split(absl::string_view line, std::vector<std::string>* cells) {
    size_t n = 0;
    auto next = [&]() -> std::string* {
      if (n == cells->size()) cells->emplace_back();
      std::string* cell = &(*cells)[n++];
      cell->clear();
      return cell;
    };
    std::string* cur = next();
    bool quoted = false, was_quoted = false;
    size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (quoted) {
        const size_t q = line.find('"', i);
        if (q == absl::string_view::npos) {
          cur->append(line.data() + i, line.size() - i);
          break;
        }
        cur->append(line.data() + i, q - i);
        if (q + 1 < line.size() && line[q + 1] == '"') {
          cur->push_back('"');
          i = q + 2;
        } else {
          quoted = false;
          i = q + 1;
        }
      } else if (c == '"' && !was_quoted &&
                 absl::StripAsciiWhitespace(*cur).empty()) {
        cur->clear();
        quoted = was_quoted = true;
        ++i;
      } else if (c == ',') {
        cur = next();
        was_quoted = false;
        ++i;
      } else {
        // A run of plain characters (a quote here is an ordinary one).
        size_t j = i + 1;
        while (j < line.size() && line[j] != ',' && line[j] != '"') ++j;
        cur->append(line.data() + i, j - i);
        i = j;
      }
    }
    return n;
  }

  absl::Status Record(absl::string_view line, std::vector<ImportedRow>* rows,
                      std::vector<RowProblem>* rejected) {
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    ++record_no_;
    if (record_no_ == 1) {
      StripBom(&line);
      return Header(line);
    }
    const size_t n = Split(line, &cells_);
    bool blank = true;
    for (size_t i = 0; i < n && blank; ++i) {
      if (!absl::StripAsciiWhitespace(cells_[i]).empty()) blank = false;
    }
    if (blank) return absl::OkStatus();  // spreadsheets save empty rows
    ++rows_read_;
    if (n > columns_.size()) {
      rejected->push_back(
          {record_no_,
           absl::StrCat("the row has ", n, " cells but the header names ",
                        columns_.size(), " columns")});
      return absl::OkStatus();
    }
    row_cells_.Clear();
    for (size_t i = 0; i < n; ++i)
      row_cells_.Set(column_ids_[i], absl::StripAsciiWhitespace(cells_[i]));
    ImportedRow& row = NextRow(rows);
    if (auto s = FillRow(record_no_, row_cells_, options_, &row); !s.ok()) {
      Unuse(rows);
      rejected->push_back({record_no_, std::string(s.message())});
    }
    return absl::OkStatus();
  }

  absl::Status Header(absl::string_view line) {
    std::vector<std::string> names;
    names.resize(Split(line, &names));
    absl::flat_hash_set<std::string> seen;
    for (size_t i = 0; i < names.size(); ++i) {
      std::string key = ColumnKey(names[i]);
      if (key.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("header (row 1): column ", i + 1, " has no name"));
      }
      if (!IsColumn(key)) {
        // The name is quoted back only when it is printable.
        if (const char* why = TextProblem(key, TextKind::kShort)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "header (row 1): the name of column ", i + 1, " ", why));
        }
        return absl::InvalidArgumentError(absl::StrCat(
            "header (row 1): '", key,
            "' is not an import column (see docs/AGENT.md for the columns)"));
      }
      if (!seen.insert(key).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("header (row 1): column '", key, "' appears twice"));
      }
      column_ids_.push_back(ColumnIndex(key));
      columns_.push_back(std::move(key));
    }
    if (!seen.contains("subject_id")) {
      return absl::InvalidArgumentError(
          "header (row 1): the subject_id column is required");
    }
    return absl::OkStatus();
  }

  const ImportOptions options_;
  std::string buf_;
  size_t scan_ = 0;
  bool in_quotes_ = false;
  uint64_t record_no_ = 0;
  std::vector<std::string> columns_;
  std::vector<int> column_ids_;  // each header column's index in Columns()
  std::vector<std::string> cells_;
  RowCells row_cells_;
};

}  // namespace

std::unique_ptr<RowParser> NewCsvParser(const ImportOptions& options) {
  return std::make_unique<CsvParser>(options);
}

}  // namespace accord::agent::import_internal
