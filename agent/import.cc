#include "agent/import.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "agent/local_api.h"
#include "linkage/normalise.h"
#include "policy/fields.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"

namespace accord::agent {
namespace {

using Cells = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxTextBytes = 65536;
constexpr size_t kMaxShortBytes = 512;

const std::vector<absl::string_view>& Columns() {
  // subject_id, then the field catalogue in its order (FillRow relies on
  // this), then the record, consent and engagement columns.
  static const auto* kColumns = [] {
    auto* v = new std::vector<absl::string_view>{"subject_id"};
    for (const auto& f : policy::AllFields()) v->push_back(f.name);
    for (absl::string_view c : {"record_id",
                                "record_category",
                                "record_provenance",
                                "record_date",
                                "record_service",
                                "record_author_role",
                                "record_text",
                                "consent_id",
                                "consent_to_orgs",
                                "consent_to_kinds",
                                "consent_purposes",
                                "consent_categories",
                                "consent_given",
                                "consent_method",
                                "consent_recorded_by",
                                "consent_expires",
                                "engagement_service",
                                "engagement_started",
                                "engagement_ended",
                                "engagement_needs",
                                "engagement_worker_name",
                                "engagement_worker_role"}) {
      v->push_back(c);
    }
    return v;
  }();
  return *kColumns;
}

bool IsColumn(absl::string_view name) {
  static const auto* kSet = new absl::flat_hash_set<absl::string_view>(
      Columns().begin(), Columns().end());
  return kSet->contains(name);
}

bool IsListColumn(absl::string_view name) {
  return name == "consent_to_orgs" || name == "consent_to_kinds" ||
         name == "consent_purposes" || name == "consent_categories" ||
         name == "engagement_needs";
}

// "Given Name", "given-name" and "GIVEN_NAME" all name given_name.
std::string ColumnKey(absl::string_view header) {
  std::string key(absl::StripAsciiWhitespace(header));
  for (char& c : key) {
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
    if (c == ' ' || c == '-') c = '_';
  }
  return key;
}

void StripBom(absl::string_view* text) {
  if (absl::StartsWith(*text, "\xEF\xBB\xBF")) text->remove_prefix(3);
}

absl::Status Bad(absl::string_view column, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(column, ": ", what));
}

// The index of each import column in Columns().
int ColumnIndex(absl::string_view name) {
  static const auto* kIndex = [] {
    auto* m = new absl::flat_hash_map<absl::string_view, int>;
    for (size_t i = 0; i < Columns().size(); ++i)
      m->emplace(Columns()[i], static_cast<int>(i));
    return m;
  }();
  auto it = kIndex->find(name);
  return it == kIndex->end() ? -1 : it->second;
}

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

// Calls `item` with each non-empty item of a ';'-separated list, trimmed.
template <typename Fn>
absl::Status ForEachListItem(absl::string_view text, Fn&& item) {
  for (absl::string_view part : absl::StrSplit(text, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (absl::Status s = item(part); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Sets a string field, reusing its storage.
void SetText(std::string* field, absl::string_view value) {
  field->assign(value.data(), value.size());
}

// A value of `type` written as the enum value's name without `prefix`, in any
// case, with spaces or hyphens for underscores ("case summary" ->
// DATA_CATEGORY_CASE_SUMMARY). The unspecified value is never accepted.
template <typename Enum>
absl::StatusOr<Enum> EnumCell(absl::string_view column, absl::string_view text,
                              absl::string_view prefix) {
  const auto* d = google::protobuf::GetEnumDescriptor<Enum>();
  // Every accepted spelling (after upper-casing), built once: each value's
  // name without `prefix`, then its full name where that is not taken.
  struct Names {
    std::string prefix;
    absl::flat_hash_map<std::string, int> number;
  };
  static const Names* const kNames = [&] {
    auto* n = new Names{std::string(prefix), {}};
    for (int i = 0; i < d->value_count(); ++i) {
      n->number.emplace(absl::StripPrefix(d->value(i)->name(), prefix),
                        d->value(i)->number());
    }
    for (int i = 0; i < d->value_count(); ++i)
      n->number.emplace(d->value(i)->name(), d->value(i)->number());
    return n;
  }();
  std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  for (char& c : name) {
    if (c == ' ' || c == '-') c = '_';
  }
  int number = 0;
  if (prefix == kNames->prefix) {
    if (auto it = kNames->number.find(name); it != kNames->number.end())
      number = it->second;
  } else {
    const auto* v = d->FindValueByName(absl::StrCat(prefix, name));
    if (v == nullptr) v = d->FindValueByName(name);
    if (v != nullptr) number = v->number();
  }
  if (number == 0) {
    std::vector<std::string> words;
    for (int i = 0; i < d->value_count(); ++i) {
      if (d->value(i)->number() == 0) continue;
      std::string w =
          absl::AsciiStrToLower(absl::StripPrefix(d->value(i)->name(), prefix));
      words.push_back(std::move(w));
    }
    return Bad(column, absl::StrCat("not one of ", absl::StrJoin(words, ", ")));
  }
  return static_cast<Enum>(number);
}

// A date (YYYY-MM-DD or DD/MM/YYYY, read as midnight UTC) or an RFC 3339
// date and time.
absl::StatusOr<absl::Time> TimeCell(absl::string_view column,
                                    absl::string_view text) {
  if (text.size() > 10) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  }
  auto day_text = linkage::NormaliseDateOfBirth(text);
  if (!day_text.ok()) {
    return Bad(column,
               "not a date (write YYYY-MM-DD or DD/MM/YYYY, or a date and "
               "time as 2026-03-01T14:30:00Z)");
  }
  // A real calendar date, written YYYY-MM-DD.
  const std::string& d = *day_text;
  auto digits = [&d](size_t from, size_t n) {
    int v = 0;
    for (size_t i = from; i < from + n; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  const absl::CivilDay day(digits(0, 4), digits(5, 2), digits(8, 2));
  return absl::FromUnixSeconds((day - absl::CivilDay(1970, 1, 1)) * 86400);
}

absl::Status CheckLength(absl::string_view column, absl::string_view text,
                         size_t max) {
  if (text.size() > max)
    return Bad(column, absl::StrCat("longer than ", max, " bytes"));
  return absl::OkStatus();
}

absl::Status BuildRecord(const RowCells& c, const std::string& subject_id,
                         accord::v1::Record* r) {
  SetText(r->mutable_subject_local_id(), subject_id);
  const absl::string_view id = c.Get("record_id");
  if (id.empty()) return Bad("record_id", "required when a row has a record");
  if (auto s = CheckLength("record_id", id, kMaxIdBytes); !s.ok()) return s;
  SetText(r->mutable_local_id(), id);
  if (c.Get("record_category").empty())
    return Bad("record_category", "required when a row has a record");
  auto category = EnumCell<accord::v1::DataCategory>(
      "record_category", c.Get("record_category"), "DATA_CATEGORY_");
  if (!category.ok()) return category.status();
  r->set_category(*category);
  // UK GDPR Art 5(1)(d): a receiver must be able to tell fact from opinion,
  // so every imported record must say which it is.
  if (c.Get("record_provenance").empty()) {
    return Bad("record_provenance",
               "required: say whether the record is fact or opinion");
  }
  auto provenance = EnumCell<accord::v1::Provenance>(
      "record_provenance", c.Get("record_provenance"), "PROVENANCE_");
  if (!provenance.ok()) return provenance.status();
  r->set_provenance(*provenance);
  if (!c.Get("record_date").empty()) {
    auto t = TimeCell("record_date", c.Get("record_date"));
    if (!t.ok()) return t.status();
    *r->mutable_recorded_at() = ToProtoTime(*t);
  }
  for (const char* col : {"record_service", "record_author_role"}) {
    if (auto s = CheckLength(col, c.Get(col), kMaxShortBytes); !s.ok())
      return s;
  }
  SetText(r->mutable_service(), c.Get("record_service"));
  SetText(r->mutable_author_role(), c.Get("record_author_role"));
  const absl::string_view text = c.Get("record_text");
  if (text.empty())
    return Bad("record_text", "required when a row has a record");
  if (auto s = CheckLength("record_text", text, kMaxTextBytes); !s.ok())
    return s;
  SetText(r->mutable_text(), text);
  return absl::OkStatus();
}

absl::Status BuildConsent(const RowCells& c, const std::string& subject_id,
                          const ImportOptions& options,
                          accord::v1::ConsentRecord* consent) {
  SetText(consent->mutable_subject_local_id(), subject_id);
  const auto* partnership = options.partnership;
  absl::Status list = ForEachListItem(
      c.Get("consent_to_orgs"), [&](absl::string_view part) -> absl::Status {
        std::string* org = consent->add_granted_to_orgs();
        SetText(org, part);
        if (partnership != nullptr && partnership->FindOrg(*org) == nullptr) {
          return Bad("consent_to_orgs",
                     "names an organisation that is not in the partnership");
        }
        return absl::OkStatus();
      });
  if (!list.ok()) return list;
  list = ForEachListItem(c.Get("consent_to_kinds"),
                         [&](absl::string_view kind) -> absl::Status {
                           auto k = EnumCell<accord::v1::OrgKind>(
                               "consent_to_kinds", kind, "ORG_KIND_");
                           if (!k.ok()) return k.status();
                           consent->add_granted_to_kinds(*k);
                           return absl::OkStatus();
                         });
  if (!list.ok()) return list;
  if (consent->granted_to_orgs_size() == 0 &&
      consent->granted_to_kinds_size() == 0) {
    return Bad("consent_to_orgs",
               "a consent must name at least one organisation "
               "(consent_to_orgs) or kind of organisation (consent_to_kinds)");
  }
  list = ForEachListItem(
      c.Get("consent_purposes"), [&](absl::string_view part) -> absl::Status {
        std::string* purpose = consent->add_purposes();
        SetText(purpose, part);
        if (partnership != nullptr && !partnership->HasPurpose(*purpose)) {
          return Bad("consent_purposes",
                     "names a purpose that is not one of the partnership's");
        }
        return absl::OkStatus();
      });
  if (!list.ok()) return list;
  if (consent->purposes_size() == 0)
    return Bad("consent_purposes", "required when a row has a consent");
  list =
      ForEachListItem(c.Get("consent_categories"),
                      [&](absl::string_view category) -> absl::Status {
                        auto k = EnumCell<accord::v1::DataCategory>(
                            "consent_categories", category, "DATA_CATEGORY_");
                        if (!k.ok()) return k.status();
                        consent->add_categories(*k);
                        return absl::OkStatus();
                      });
  if (!list.ok()) return list;
  if (consent->categories_size() == 0)
    return Bad("consent_categories", "required when a row has a consent");
  if (c.Get("consent_given").empty())
    return Bad("consent_given", "required when a row has a consent");
  auto given = TimeCell("consent_given", c.Get("consent_given"));
  if (!given.ok()) return given.status();
  *consent->mutable_given_at() = ToProtoTime(*given);
  if (c.Get("consent_method").empty()) {
    return Bad("consent_method",
               "required: how the consent was given (written, verbal or "
               "digital)");
  }
  auto method = EnumCell<accord::v1::ConsentMethod>(
      "consent_method", c.Get("consent_method"), "CONSENT_METHOD_");
  if (!method.ok()) return method.status();
  consent->set_method(*method);
  const absl::string_view by = c.Get("consent_recorded_by");
  if (by.empty())
    return Bad("consent_recorded_by", "required: who recorded it");
  if (auto s = CheckLength("consent_recorded_by", by, kMaxShortBytes); !s.ok())
    return s;
  SetText(consent->mutable_recorded_by(), by);
  if (!c.Get("consent_expires").empty()) {
    auto expires = TimeCell("consent_expires", c.Get("consent_expires"));
    if (!expires.ok()) return expires.status();
    if (*expires <= *given)
      return Bad("consent_expires", "must be after consent_given");
    *consent->mutable_expires_at() = ToProtoTime(*expires);
  }
  const absl::string_view id = c.Get("consent_id");
  if (auto s = CheckLength("consent_id", id, kMaxIdBytes); !s.ok()) return s;
  if (!id.empty()) {
    SetText(consent->mutable_id(), id);
  } else {
    // Without an id, the same consent imported twice gets the same id, so a
    // re-import does not record it again.
    const Digest d = Sha256(consent->SerializeAsString());
    consent->set_id(absl::StrCat("import-", HexEncode(d).substr(0, 24)));
  }
  return absl::OkStatus();
}

absl::Status BuildEngagement(const RowCells& c, const std::string& subject_id,
                             accord::v1::Engagement* e) {
  e->set_subject_local_id(subject_id);
  const absl::string_view service = c.Get("engagement_service");
  if (service.empty()) {
    return Bad("engagement_service", "required when a row has an engagement");
  }
  if (auto s = CheckLength("engagement_service", service, kMaxShortBytes);
      !s.ok())
    return s;
  SetText(e->mutable_service(), service);
  if (c.Get("engagement_started").empty()) {
    return Bad("engagement_started", "required when a row has an engagement");
  }
  auto started = TimeCell("engagement_started", c.Get("engagement_started"));
  if (!started.ok()) return started.status();
  *e->mutable_started_at() = ToProtoTime(*started);
  if (!c.Get("engagement_ended").empty()) {
    auto ended = TimeCell("engagement_ended", c.Get("engagement_ended"));
    if (!ended.ok()) return ended.status();
    if (*ended < *started)
      return Bad("engagement_ended", "must not be before engagement_started");
    *e->mutable_ended_at() = ToProtoTime(*ended);
  }
  (void)ForEachListItem(c.Get("engagement_needs"), [&](absl::string_view need) {
    SetText(e->add_needs(), need);
    return absl::OkStatus();
  });
  for (const char* col : {"engagement_worker_name", "engagement_worker_role"}) {
    if (auto s = CheckLength(col, c.Get(col), kMaxShortBytes); !s.ok())
      return s;
  }
  SetText(e->mutable_worker_name(), c.Get("engagement_worker_name"));
  SetText(e->mutable_worker_role(), c.Get("engagement_worker_role"));
  return absl::OkStatus();
}

// `*m` cleared (keeping its storage), or a new message.
template <typename Msg>
Msg* Fresh(std::optional<Msg>* m) {
  if (m->has_value()) {
    (*m)->Clear();
  } else {
    m->emplace();
  }
  return &**m;
}

// Validates one row's cells into `out`, a new row or one whose storage is
// reused: everything it held is replaced.
absl::Status FillRow(uint64_t row, const RowCells& c,
                     const ImportOptions& options, ImportedRow* out) {
  out->row = row;
  out->subject_fields.clear();
  const absl::string_view subject_id = c.Get("subject_id");
  if (subject_id.empty())
    return Bad("subject_id", "required: the person's id in your own system");
  if (auto s = CheckLength("subject_id", subject_id, kMaxIdBytes); !s.ok())
    return s;
  SetText(&out->subject_id, subject_id);
  // The catalogue's fields are the columns after subject_id, in order.
  const auto& fields = policy::AllFields();
  for (size_t i = 0; i < fields.size(); ++i) {
    const absl::string_view v = c.At(1 + static_cast<int>(i));
    if (v.empty()) continue;
    if (auto s = CheckLength(fields[i].name, v, 4096); !s.ok()) return s;
    out->subject_fields.emplace(std::string(fields[i].name), std::string(v));
  }
  if (c.AnyWithPrefix("record_")) {
    if (auto s = BuildRecord(c, out->subject_id, Fresh(&out->record)); !s.ok())
      return s;
  } else {
    out->record.reset();
  }
  if (c.AnyWithPrefix("consent_")) {
    if (auto s =
            BuildConsent(c, out->subject_id, options, Fresh(&out->consent));
        !s.ok())
      return s;
  } else {
    out->consent.reset();
  }
  if (c.AnyWithPrefix("engagement_")) {
    if (auto s = BuildEngagement(c, out->subject_id, Fresh(&out->engagement));
        !s.ok())
      return s;
  } else {
    out->engagement.reset();
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// CSV (RFC 4180 as spreadsheets write it: comma-separated, cells with commas,
// quotes or line breaks in double quotes, "" for a quote inside one).

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

// ---------------------------------------------------------------------------
// JSON Lines: one flat JSON object per line, keys the column names, values
// strings (or null; lists may also be arrays of strings).

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

void AddCounts(const accord::v1::ImportReport& from,
               accord::v1::ImportReport* to) {
  to->set_rows_applied(to->rows_applied() + from.rows_applied());
  to->set_subjects_created(to->subjects_created() + from.subjects_created());
  to->set_subjects_updated(to->subjects_updated() + from.subjects_updated());
  to->set_records_written(to->records_written() + from.records_written());
  to->set_consents_recorded(to->consents_recorded() + from.consents_recorded());
  to->set_engagements_written(to->engagements_written() +
                              from.engagements_written());
}

bool SameFields(const accord::v1::Subject& a, const accord::v1::Subject& b) {
  if (a.fields_size() != b.fields_size()) return false;
  for (const auto& [k, v] : a.fields()) {
    auto it = b.fields().find(k);
    if (it == b.fields().end() || it->second != v) return false;
  }
  return true;
}

// Whether a failed row is the row's fault (reported, import goes on) rather
// than the store's (the batch stops).
bool RowFault(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::Span<const absl::string_view> ImportColumns() { return Columns(); }

absl::StatusOr<ImportedRow> BuildRow(uint64_t row, const Cells& cells,
                                     const ImportOptions& options) {
  RowCells c;
  for (const auto& [column, value] : cells) c.Set(ColumnIndex(column), value);
  ImportedRow out;
  if (auto s = FillRow(row, c, options, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::unique_ptr<RowParser>> RowParser::Create(
    accord::v1::ImportFormat format, const ImportOptions& options) {
  switch (format) {
    case accord::v1::IMPORT_FORMAT_CSV:
      return std::make_unique<CsvParser>(options);
    case accord::v1::IMPORT_FORMAT_JSONL:
      return std::make_unique<JsonLinesParser>(options);
    default:
      return absl::InvalidArgumentError(
          "field format: the first message of an import must say CSV or "
          "JSONL");
  }
}

// ---------------------------------------------------------------------------
// Importer

namespace {

// What a row will write, decided by reading the store only. Everything that
// can make a row fail by its own fault is found here, before any write.
struct RowPlan {
  std::optional<accord::v1::Subject> subject;  // set when it changes
  std::vector<accord::v1::SubjectToken> tokens;
  bool record_consent = false;
};

absl::StatusOr<RowPlan> CheckRow(AgentStore::Writer& w,
                                 const linkage::LinkageKey& key,
                                 const ImportedRow& row) {
  RowPlan plan;
  auto existing = w.FindSubject(row.subject_id);
  if (!existing.ok() &&
      existing.status().code() != absl::StatusCode::kNotFound) {
    return existing.status();
  }
  if (!row.subject_fields.empty()) {
    accord::v1::Subject subject;
    if (existing.ok()) subject = *existing;
    subject.set_local_id(row.subject_id);
    for (const auto& [k, v] : row.subject_fields)
      (*subject.mutable_fields())[k] = v;
    auto tokens = PrepareSubject(key, &subject);
    if (!tokens.ok()) {
      if (tokens.status().code() == absl::StatusCode::kFailedPrecondition) {
        return Bad("subject_id",
                   existing.ok()
                       ? "the subject's identifiers would give no token"
                       : "no subject with this id is held, and the row's "
                         "identity columns give no token to create one: give "
                         "given_name, family_name and date_of_birth, or "
                         "nhs_number, or date_of_birth and postcode");
      }
      return tokens.status();
    }
    if (!existing.ok() || !SameFields(subject, *existing)) {
      plan.subject = std::move(subject);
      plan.tokens = std::move(*tokens);
    }
  } else if (!existing.ok()) {
    return Bad("subject_id",
               "no subject with this id is held, and the row has no identity "
               "columns to create one (given_name, family_name, "
               "date_of_birth, ...)");
  }
  if (row.consent) {
    auto stored = w.FindConsent(row.consent->id());
    if (stored.ok()) {
      stored->clear_withdrawn_at();
      stored->clear_withdrawn_by();
      if (stored->SerializeAsString() != row.consent->SerializeAsString()) {
        return Bad("consent_id",
                   "a consent with this id is already recorded with other "
                   "terms; consent history is never overwritten, so give the "
                   "new consent its own id (and withdraw the old one)");
      }
    } else if (stored.status().code() == absl::StatusCode::kNotFound) {
      plan.record_consent = true;
    } else {
      return stored.status();
    }
  }
  return plan;
}

absl::Status WriteRow(AgentStore::Writer& w, const ImportedRow& row,
                      const RowPlan& plan, accord::v1::ImportReport* counts) {
  if (plan.subject) {
    auto created = w.UpsertSubject(*plan.subject, plan.tokens);
    if (!created.ok()) return created.status();
    if (*created) {
      counts->set_subjects_created(1);
    } else {
      counts->set_subjects_updated(1);
    }
  }
  if (row.record) {
    auto r = w.UpsertRecord(*row.record);
    if (!r.ok()) return r.status();
    counts->set_records_written(1);
  }
  if (plan.record_consent) {
    auto id = w.RecordConsent(*row.consent);
    if (!id.ok()) return id.status();
    counts->set_consents_recorded(1);
  }
  if (row.engagement) {
    auto id = w.RecordEngagement(*row.engagement);
    if (!id.ok()) return id.status();
    counts->set_engagements_written(1);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Importer::Apply(const std::vector<ImportedRow>& rows,
                             accord::v1::ImportReport* report,
                             std::vector<RowProblem>* rejected) {
  if (rows.empty()) return absl::OkStatus();
  accord::v1::ImportReport batch;
  std::vector<RowProblem> batch_rejected;
  // Fast path: rows are checked before they write, so a rejected row has
  // written nothing; a write that still fails part-way (which checks cannot
  // foresee, e.g. a full disk) abandons the whole batch, which is then redone
  // with a savepoint around every row. Savepoints cost a copy of every page a
  // row touches, so they are kept for that case.
  bool write_failed = false;
  auto fast = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
    w.DeferTokens();
    for (const auto& row : rows) {
      auto plan = CheckRow(w, *linkage_key_, row);
      if (!plan.ok()) {
        if (!RowFault(plan.status())) return plan.status();
        batch_rejected.push_back(
            {row.row, std::string(plan.status().message())});
        continue;
      }
      accord::v1::ImportReport counts;
      if (auto s = WriteRow(w, row, *plan, &counts); !s.ok()) {
        write_failed = true;
        return s;
      }
      counts.set_rows_applied(1);
      AddCounts(counts, &batch);
    }
    if (auto s = w.WriteDeferredTokens(); !s.ok()) {
      write_failed = true;
      return s;
    }
    return absl::OkStatus();
  });
  if (!fast.ok() && !write_failed) return fast;
  if (write_failed) {
    batch.Clear();
    batch_rejected.clear();
    auto slow = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
      for (const auto& row : rows) {
        accord::v1::ImportReport counts;
        absl::Status rs = w.Savepoint([&]() -> absl::Status {
          auto plan = CheckRow(w, *linkage_key_, row);
          if (!plan.ok()) return plan.status();
          return WriteRow(w, row, *plan, &counts);
        });
        if (rs.ok()) {
          counts.set_rows_applied(1);
          AddCounts(counts, &batch);
        } else if (RowFault(rs)) {
          batch_rejected.push_back({row.row, std::string(rs.message())});
        } else {
          return rs;
        }
      }
      return absl::OkStatus();
    });
    if (!slow.ok()) return slow;
  }
  AddCounts(batch, report);
  for (auto& p : batch_rejected) rejected->push_back(std::move(p));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// ImportSession

absl::StatusOr<std::unique_ptr<ImportSession>> ImportSession::Start(
    accord::v1::ImportFormat format, AgentStore* store,
    const linkage::LinkageKey* linkage_key, const ImportOptions& options) {
  auto parser = RowParser::Create(format, options);
  if (!parser.ok()) return parser.status();
  return std::unique_ptr<ImportSession>(
      new ImportSession(std::move(*parser), store, linkage_key, options));
}

ImportSession::ImportSession(std::unique_ptr<RowParser> parser,
                             AgentStore* store,
                             const linkage::LinkageKey* linkage_key,
                             const ImportOptions& options)
    : parser_(std::move(parser)),
      importer_(store, linkage_key),
      options_(options) {
  // A batch's rows (a chunk may complete a few more).
  pending_.reserve(std::min(options.batch_rows, 100000) + 1024);
}

absl::Status ImportSession::ApplyPending() {
  absl::Status s = importer_.Apply(pending_, &report_, &rejected_);
  parser_->Recycle(&pending_);
  return s;
}

void RowParser::Recycle(std::vector<ImportedRow>* rows) {
  for (auto& row : *rows) spare_.push_back(std::move(row));
  rows->clear();
}

ImportedRow& RowParser::NextRow(std::vector<ImportedRow>* rows) {
  if (spare_.empty()) return rows->emplace_back();
  rows->push_back(std::move(spare_.back()));
  spare_.pop_back();
  return rows->back();
}

void RowParser::Unuse(std::vector<ImportedRow>* rows) {
  spare_.push_back(std::move(rows->back()));
  rows->pop_back();
}

absl::Status ImportSession::Feed(absl::string_view chunk) {
  if (auto s = parser_->Feed(chunk, &pending_, &rejected_); !s.ok()) return s;
  if (static_cast<int>(pending_.size()) >= options_.batch_rows)
    return ApplyPending();
  return absl::OkStatus();
}

absl::StatusOr<accord::v1::ImportReport> ImportSession::Finish() {
  if (auto s = parser_->Finish(&pending_, &rejected_); !s.ok()) return s;
  if (auto s = ApplyPending(); !s.ok()) return s;
  accord::v1::ImportReport report = report_;
  report.set_rows_read(parser_->rows_read());
  std::stable_sort(
      rejected_.begin(), rejected_.end(),
      [](const RowProblem& a, const RowProblem& b) { return a.row < b.row; });
  report.set_rows_rejected(rejected_.size());
  for (size_t i = 0;
       i < rejected_.size() && i < static_cast<size_t>(kMaxListedRejections);
       ++i) {
    auto* r = report.add_rejected();
    r->set_row(rejected_[i].row);
    r->set_reason(rejected_[i].reason);
  }
  return report;
}

}  // namespace accord::agent
