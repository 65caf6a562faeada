// Bulk import into a partner's agent: subjects, records, consent and
// engagements from a CSV file (as a spreadsheet saves it) or JSON Lines, as
// `accordctl import` streams them to the local API.
//
// The story:
//  1. RowParser turns bytes, fed in chunks cut anywhere, into rows of cells
//     named by column (the columns are kColumns; docs/AGENT.md describes
//     them for the people who produce the files), and each row into a
//     validated ImportedRow. A row that does not validate is rejected with a
//     reason naming the column; a problem with the whole file (an unknown
//     column in the header, an unclosed quote) stops the import.
//  2. Importer applies validated rows to the store, many rows per
//     transaction (one commit per batch). Each row is first checked against
//     the store (reads only: say its consent reuses a consent id for other
//     terms) and rejected before it writes anything; a row whose writes still
//     fail part-way makes the batch be redone with a savepoint around every
//     row, so a bad row never half-writes a subject and the rows around it
//     are kept.
//  3. ImportSession ties the two together for one import stream and builds
//     the ImportReport: rows read and applied, what was written, and every
//     rejected row with its number (as a spreadsheet numbers it) and reason.
//
// Re-importing the same file is safe: subjects and records are upserted by
// their ids, an identical consent (same id, or with no id the same terms) is
// recognised and not recorded twice, and an engagement with the same subject,
// service and start date is updated rather than duplicated.
//
// Reasons never contain a cell's value (it may be personal data), only the
// column and what is wrong with it. Not thread-safe: one session per stream;
// sessions on different threads are fine (the store serialises writes).
#ifndef ACCORD_AGENT_IMPORT_H_
#define ACCORD_AGENT_IMPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "accord/v1/agent.pb.h"
#include "agent/store.h"
#include "linkage/tokens.h"
#include "runtime/partnership.h"

namespace accord::agent {

// Every column an import file may have. Subject columns are `subject_id` and
// the names of the field catalogue (policy/fields.h); the others carry one
// record, one consent and one engagement for the row's subject.
absl::Span<const absl::string_view> ImportColumns();

// One row, validated and ready to write.
struct ImportedRow {
  uint64_t row = 0;
  std::string subject_id;
  // The catalogue fields given on the row (non-empty cells only: an empty
  // cell never erases what the agent holds).
  std::map<std::string, std::string> subject_fields;
  std::optional<accord::v1::Record> record;
  std::optional<accord::v1::ConsentRecord> consent;
  std::optional<accord::v1::Engagement> engagement;
};

struct RowProblem {
  uint64_t row = 0;
  std::string reason;  // "column: what is wrong"
};

struct ImportOptions {
  // When set, consent recipients and purposes must be organisations, kinds
  // and purposes of this partnership (a misspelt organisation would make the
  // consent silently useless).
  const PartnershipDirectory* partnership = nullptr;
  // Rows per transaction. Each row still has its own savepoint.
  int batch_rows = 10000;
  // Longest row accepted, in bytes.
  size_t max_row_bytes = 1 << 20;
};

// Validates one row's cells (column name -> trimmed text). `row` numbers the
// row for messages.
absl::StatusOr<ImportedRow> BuildRow(
    uint64_t row, const std::vector<std::pair<std::string, std::string>>& cells,
    const ImportOptions& options);

// Splits an import file into rows and validates each. Feed() may be called
// with chunks cut anywhere, even inside a UTF-8 character or a quoted cell.
class RowParser {
 public:
  static absl::StatusOr<std::unique_ptr<RowParser>> Create(
      accord::v1::ImportFormat format, const ImportOptions& options);
  virtual ~RowParser() = default;

  // Appends the complete rows in `chunk` (with what was left over from the
  // previous chunk) to `rows` or `rejected`. An error (InvalidArgument) is a
  // problem with the whole file, e.g. an unknown column in the CSV header.
  virtual absl::Status Feed(absl::string_view chunk,
                            std::vector<ImportedRow>* rows,
                            std::vector<RowProblem>* rejected) = 0;
  // The last row when the file does not end with a newline; an error when
  // the file ends inside a quoted cell or (CSV) has no header.
  virtual absl::Status Finish(std::vector<ImportedRow>* rows,
                              std::vector<RowProblem>* rejected) = 0;
  // Data rows seen so far, blank rows not counted.
  uint64_t rows_read() const { return rows_read_; }

  // Takes back rows that have been applied (and empties `rows`): the next
  // rows parsed reuse their storage (strings, messages) instead of
  // allocating their own.
  void Recycle(std::vector<ImportedRow>* rows);

 protected:
  // A row appended to `rows` for the parser to fill, reusing a recycled
  // one's storage when there is one; Unuse() takes the last back (a row
  // that was rejected).
  ImportedRow& NextRow(std::vector<ImportedRow>* rows);
  void Unuse(std::vector<ImportedRow>* rows);

  uint64_t rows_read_ = 0;

 private:
  std::vector<ImportedRow> spare_;
};

// Writes validated rows to the store.
class Importer {
 public:
  Importer(AgentStore* store, const linkage::LinkageKey* linkage_key)
      : store_(store), linkage_key_(linkage_key) {}

  // Applies `rows` in one transaction, each row all-or-nothing. Counts
  // what was written into `report` and appends rows that could not be
  // applied to `rejected`. An error means the transaction itself failed
  // (nothing of this batch was written).
  absl::Status Apply(const std::vector<ImportedRow>& rows,
                     accord::v1::ImportReport* report,
                     std::vector<RowProblem>* rejected);

 private:
  AgentStore* store_;
  const linkage::LinkageKey* linkage_key_;
};

// One import stream: parse chunks as they arrive, apply full batches, report.
class ImportSession {
 public:
  static absl::StatusOr<std::unique_ptr<ImportSession>> Start(
      accord::v1::ImportFormat format, AgentStore* store,
      const linkage::LinkageKey* linkage_key, const ImportOptions& options);

  // Parses `chunk` and applies every full batch. An error stops the import;
  // rows of earlier batches stay written (each was valid on its own).
  absl::Status Feed(absl::string_view chunk);
  // Applies what is left and returns the report.
  absl::StatusOr<accord::v1::ImportReport> Finish();

  // Rejected rows listed in a report; the count covers all of them.
  static constexpr int kMaxListedRejections = 1000;

 private:
  ImportSession(std::unique_ptr<RowParser> parser, AgentStore* store,
                const linkage::LinkageKey* linkage_key,
                const ImportOptions& options);
  absl::Status ApplyPending();

  std::unique_ptr<RowParser> parser_;
  Importer importer_;
  const ImportOptions options_;
  std::vector<ImportedRow> pending_;
  std::vector<RowProblem> rejected_;
  accord::v1::ImportReport report_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_IMPORT_H_
