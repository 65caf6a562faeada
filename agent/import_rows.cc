// Import rows: the columns, and each row's cells validated into an
// ImportedRow (one record, consent and engagement per row).
#include "agent/import_rows.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "agent/consent_terms.h"
#include "agent/engagement_check.h"
#include "agent/import.h"
#include "agent/input_text.h"
#include "linkage/normalise.h"
#include "policy/fields.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "stats/dataset.h"

namespace accord::agent {
namespace import_internal {

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
                                "engagement_worker_role",
                                "engagement_referral_source",
                                "engagement_ethnicity",
                                "engagement_age_band",
                                "engagement_disability",
                                "engagement_sex",
                                "engagement_outcome_instrument",
                                "engagement_outcome_before",
                                "engagement_outcome_before_date",
                                "engagement_outcome_after",
                                "engagement_outcome_after_date"}) {
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

namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxTextBytes = 65536;
constexpr size_t kMaxShortBytes = 512;

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
  absl::Status list = ForEachListItem(
      c.Get("consent_to_orgs"), [&](absl::string_view part) -> absl::Status {
        SetText(consent->add_granted_to_orgs(), part);
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
  list = ForEachListItem(c.Get("consent_purposes"),
                         [&](absl::string_view part) -> absl::Status {
                           SetText(consent->add_purposes(), part);
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
    *consent->mutable_expires_at() = ToProtoTime(*expires);
  }
  // The same terms every path that records consent is held to.
  if (auto s =
          CheckConsentTerms(*consent, options.partnership, kConsentImportNames);
      !s.ok()) {
    return s;
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

// A code of one of the monitoring dataset's code lists (stats/dataset.h,
// whose message names the code list and its codes, never the cell).
template <typename Code>
absl::StatusOr<Code> CodeCell(
    absl::string_view column, absl::string_view text,
    absl::StatusOr<Code> (*parse)(absl::string_view)) {
  auto code = parse(text);
  if (code.ok()) return code;
  return Bad(column, code.status().message());
}

// An outcome score: a decimal number ("42" or "42.5"), never a value of
// another form (no signs, exponents, "nan" or "inf").
absl::StatusOr<double> ScoreCell(absl::string_view column,
                                 absl::string_view text) {
  const size_t point = text.find('.');
  bool digits_only = !text.empty() && text.front() != '.' &&
                     text.back() != '.' && text.size() <= 16;
  for (size_t i = 0; i < text.size() && digits_only; ++i) {
    digits_only = absl::ascii_isdigit(static_cast<unsigned char>(text[i])) ||
                  (i == point && text[i] == '.');
  }
  double score = 0;
  if (!digits_only || !absl::SimpleAtod(text, &score)) {
    return Bad(column, "not a number (write the score as 42 or 42.5)");
  }
  return score;
}

// The row's referral source, demographics and outcome measures (one
// instrument, a before and an after score), checked as every engagement is
// (agent/engagement_check.h).
absl::Status BuildMonitoring(const RowCells& c, accord::v1::Engagement* e) {
  if (!c.Get("engagement_referral_source").empty()) {
    auto source = CodeCell("engagement_referral_source",
                           c.Get("engagement_referral_source"),
                           &stats::ParseReferralSource);
    if (!source.ok()) return source.status();
    e->set_referral_source(*source);
  }
  if (!c.Get("engagement_ethnicity").empty()) {
    auto v = CodeCell("engagement_ethnicity", c.Get("engagement_ethnicity"),
                      &stats::ParseEthnicity);
    if (!v.ok()) return v.status();
    e->mutable_monitoring()->set_ethnicity(*v);
  }
  if (!c.Get("engagement_age_band").empty()) {
    auto v = CodeCell("engagement_age_band", c.Get("engagement_age_band"),
                      &stats::ParseAgeBand);
    if (!v.ok()) return v.status();
    e->mutable_monitoring()->set_age_band(*v);
  }
  if (!c.Get("engagement_disability").empty()) {
    auto v = CodeCell("engagement_disability", c.Get("engagement_disability"),
                      &stats::ParseDisability);
    if (!v.ok()) return v.status();
    e->mutable_monitoring()->set_disability(*v);
  }
  if (!c.Get("engagement_sex").empty()) {
    auto v =
        CodeCell("engagement_sex", c.Get("engagement_sex"), &stats::ParseSex);
    if (!v.ok()) return v.status();
    e->mutable_monitoring()->set_sex(*v);
  }

  auto instrument = accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED;
  if (!c.Get("engagement_outcome_instrument").empty()) {
    auto v = CodeCell("engagement_outcome_instrument",
                      c.Get("engagement_outcome_instrument"),
                      &stats::ParseInstrument);
    if (!v.ok()) return v.status();
    instrument = *v;
  }
  // The columns of each stage's measure, in the order they are added to the
  // engagement (so a problem at outcomes[i] names its column).
  struct StageColumns {
    accord::v1::OutcomeStage stage;
    const char* score;
    const char* date;
  };
  static constexpr StageColumns kStages[] = {
      {accord::v1::OUTCOME_STAGE_BEFORE, "engagement_outcome_before",
       "engagement_outcome_before_date"},
      {accord::v1::OUTCOME_STAGE_AFTER, "engagement_outcome_after",
       "engagement_outcome_after_date"},
  };
  std::vector<const StageColumns*> added;
  for (const StageColumns& stage : kStages) {
    const absl::string_view score_text = c.Get(stage.score);
    const absl::string_view date_text = c.Get(stage.date);
    if (score_text.empty()) {
      if (!date_text.empty()) {
        return Bad(stage.date, absl::StrCat("given without ", stage.score,
                                            " (the score it dates)"));
      }
      continue;
    }
    auto score = ScoreCell(stage.score, score_text);
    if (!score.ok()) return score.status();
    if (instrument == accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED) {
      return Bad(stage.score,
                 "a score needs engagement_outcome_instrument (the scale it "
                 "was measured on)");
    }
    accord::v1::OutcomeMeasure* m = e->add_outcomes();
    m->set_instrument(instrument);
    m->set_stage(stage.stage);
    m->set_score(*score);
    if (!date_text.empty()) {
      auto at = TimeCell(stage.date, date_text);
      if (!at.ok()) return at.status();
      *m->mutable_measured_at() = ToProtoTime(*at);
    }
    added.push_back(&stage);
  }
  // The rules every way in shares, with the problem named by its column.
  if (auto problem = FindEngagementProblem(*e)) {
    if (problem->outcome >= static_cast<int>(added.size())) {
      return Bad("engagement_outcome_instrument", problem->what);
    }
    const StageColumns& stage = *added[problem->outcome];
    const char* column = problem->field == "instrument"
                             ? "engagement_outcome_instrument"
                         : problem->field == "measured_at" ? stage.date
                                                           : stage.score;
    return Bad(column, problem->what);
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
  return BuildMonitoring(c, e);
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

}  // namespace

// Validates one row's cells into `out`, a new row or one whose storage is
// reused: everything it held is replaced.
absl::Status FillRow(uint64_t row, const RowCells& c,
                     const ImportOptions& options, ImportedRow* out) {
  out->row = row;
  out->subject_fields.clear();
  const absl::string_view subject_id = c.Get("subject_id");
  if (subject_id.empty())
    return Bad("subject_id", "required: the person's id in your own system");
  // Every cell is text the store must be able to read back and a terminal
  // or spreadsheet must be able to show: checked before anything else.
  static const auto* const kKinds = [] {
    auto* kinds = new std::vector<TextKind>;
    for (absl::string_view column : Columns()) {
      kinds->push_back(column == "record_text" ? TextKind::kFree
                                               : SubjectFieldText(column));
    }
    return kinds;
  }();
  for (size_t i = 0; i < kKinds->size(); ++i) {
    const absl::string_view v = c.At(static_cast<int>(i));
    if (v.empty()) continue;
    if (const char* why = TextProblem(v, (*kKinds)[i])) {
      return Bad(Columns()[i],
                 absl::StrCat(why, absl::StrContains(why, "UTF-8")
                                       ? " (save the file as UTF-8, e.g. "
                                         "\"CSV UTF-8\" in Excel)"
                                       : ""));
    }
  }
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

}  // namespace import_internal

using import_internal::Cells;

absl::Span<const absl::string_view> ImportColumns() {
  return import_internal::Columns();
}

absl::StatusOr<ImportedRow> BuildRow(uint64_t row, const Cells& cells,
                                     const ImportOptions& options) {
  import_internal::RowCells c;
  for (const auto& [column, value] : cells)
    c.Set(import_internal::ColumnIndex(column), value);
  ImportedRow out;
  if (auto s = import_internal::FillRow(row, c, options, &out); !s.ok())
    return s;
  return out;
}

absl::StatusOr<std::unique_ptr<RowParser>> RowParser::Create(
    accord::v1::ImportFormat format, const ImportOptions& options) {
  switch (format) {
    case accord::v1::IMPORT_FORMAT_CSV:
      return import_internal::NewCsvParser(options);
    case accord::v1::IMPORT_FORMAT_JSONL:
      return import_internal::NewJsonLinesParser(options);
    default:
      return absl::InvalidArgumentError(
          "field format: the first message of an import must say CSV or "
          "JSONL");
  }
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

}  // namespace accord::agent
