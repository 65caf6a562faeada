// JSON Lines import files: one flat JSON object per line, keys the column
// names, values strings (or null; lists may also be arrays of strings).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/import_rows.h"
#include "agent/input_text.h"

namespace accord::agent::import_internal {
namespace {

class JsonLinesParser final : public RowParser {
 public:
  explicit JsonLinesParser(const ImportOptions& options) : options_(options) {}

  absl::Status Feed(absl::string_view chunk, std::vector<ImportedRow>* rows,
                    std::vector<RowProblem>* rejected) override {
    buf_.append(chunk.data(), chunk.size());
    size_t start = 0;
    for (size_t i = scan_; i < buf_.size(); ++i) {
      if (buf_[i] != '\n') continue;
      if (i - start > options_.max_row_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", line_no_ + 1, ": longer than ",
                         options_.max_row_bytes, " bytes"));
      }
      Line(absl::string_view(buf_).substr(start, i - start), rows, rejected);
      start = i + 1;
    }
    buf_.erase(0, start);
    scan_ = buf_.size();
    if (buf_.size() > options_.max_row_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", line_no_ + 1, ": longer than ",
                       options_.max_row_bytes, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status Finish(std::vector<ImportedRow>* rows,
                      std::vector<RowProblem>* rejected) override {
    if (!buf_.empty()) Line(buf_, rows, rejected);
    buf_.clear();
    return absl::OkStatus();
  }

 private:
  void Line(absl::string_view line, std::vector<ImportedRow>* rows,
            std::vector<RowProblem>* rejected) {
    ++line_no_;
    if (line_no_ == 1) StripBom(&line);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) return;
    ++rows_read_;
    auto cells = Parse(line);
    if (!cells.ok()) {
      rejected->push_back({line_no_, std::string(cells.status().message())});
      return;
    }
    auto row = BuildRow(line_no_, *cells, options_);
    if (row.ok()) {
      rows->push_back(std::move(*row));
    } else {
      rejected->push_back({line_no_, std::string(row.status().message())});
    }
  }

  absl::StatusOr<Cells> Parse(absl::string_view line) {
    google::protobuf::Struct object;
    // The parser's own message may quote the line; it is not passed on.
    if (!google::protobuf::util::JsonStringToMessage(
             google::protobuf::StringPiece(line.data(), line.size()), &object)
             .ok()) {
      return absl::InvalidArgumentError(
          "the line is not one JSON object (write {\"subject_id\": \"...\", "
          "...} on a single line)");
    }
    Cells cells;
    for (const auto& [name, value] : object.fields()) {
      std::string key = ColumnKey(name);
      if (!IsColumn(key)) {
        // The key is quoted back only when it is printable.
        if (const char* why = TextProblem(key, TextKind::kShort)) {
          return absl::InvalidArgumentError(absl::StrCat("a key ", why));
        }
        return Bad(key,
                   "not an import column (see docs/AGENT.md for the columns)");
      }
      std::string text;
      switch (value.kind_case()) {
        case google::protobuf::Value::kStringValue:
          text = std::string(absl::StripAsciiWhitespace(value.string_value()));
          break;
        case google::protobuf::Value::kNullValue:
          break;
        case google::protobuf::Value::kListValue: {
          if (!IsListColumn(key)) return Bad(key, "must be a string");
          std::vector<std::string> items;
          for (const auto& item : value.list_value().values()) {
            if (item.kind_case() != google::protobuf::Value::kStringValue)
              return Bad(key, "must be a list of strings");
            items.push_back(item.string_value());
          }
          text = absl::StrJoin(items, ";");
          break;
        }
        default:
          return Bad(key,
                     "must be a string (write numbers and dates in "
                     "quotes)");
      }
      cells.emplace_back(std::move(key), std::move(text));
    }
    return cells;
  }

  const ImportOptions options_;
  std::string buf_;
  size_t scan_ = 0;
  uint64_t line_no_ = 0;
};

}  // namespace

std::unique_ptr<RowParser> NewJsonLinesParser(const ImportOptions& options) {
  return std::make_unique<JsonLinesParser>(options);
}

}  // namespace accord::agent::import_internal
