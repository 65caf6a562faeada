// Applying validated import rows to the store (Importer), and one import
// stream from its first chunk to its report (ImportSession).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/duplicates.h"
#include "agent/import.h"
#include "agent/import_rows.h"
#include "agent/local_api.h"

namespace accord::agent {
namespace {

using import_internal::Bad;

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
      // One person, one local id (agent/duplicates.h).
      auto duplicates = FindDuplicates(w, subject, *tokens);
      if (!duplicates.ok()) return duplicates.status();
      if (!duplicates->empty()) {
        return DuplicateRefusal(
            "subject_id", *duplicates,
            "use the id already held (or merge the two through the local "
            "API's UpsertSubject, merge_local_ids)");
      }
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
