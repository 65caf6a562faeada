#include "auditor/auditor_api.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "runtime/clock.h"
#include "runtime/textproto.h"

namespace accord::auditor {
namespace {

audit::PageRequest Page(uint32_t size, const std::string& token) {
  audit::PageRequest p;
  p.page_size = size;
  p.page_token = token;
  return p;
}

absl::Status NoCheck() { return absl::OkStatus(); }

}  // namespace

AuditorApi::AuditorApi(audit::AuditLog* log, AuditorAccess* access,
                       AuditorApiOptions options)
    : log_(log), access_(access), options_(options) {
  const int n = std::max(1, options_.max_concurrent_exports);
  export_busy_ = std::make_unique<std::atomic<bool>[]>(n);
  for (int i = 0; i < n; ++i) {
    export_busy_[i] = false;
    export_threads_.push_back(std::make_unique<SerialExecutor>());
  }
}

AuditorApi::~AuditorApi() = default;

template <typename Resp, typename Check, typename Body>
void AuditorApi::Run(const Caller& caller, const char* method,
                     std::string detail, Done<Resp> done, Check check,
                     Body body) {
  if (absl::Status s = check(); !s.ok()) {
    return access_->RefuseRead(
        caller, method, detail, std::move(s),
        [done = std::move(done)](absl::Status st) { done(st); });
  }
  access_->AuthoriseRead(
      caller, method, detail,
      [this, done = std::move(done),
       body = std::move(body)](absl::Status s) mutable {
        if (!s.ok()) return done(s);
        // The access is durable; the body reads (and may wait on the log's
        // writer), so it runs on the worker, not on this callback's thread.
        worker_.Post([done = std::move(done), body = std::move(body)]() {
          Resp out;
          absl::Status st = body(&out);
          if (!st.ok()) return done(st);
          done(std::move(out));
        });
      });
}

void AuditorApi::Search(const Caller& caller,
                        const accord::v1::AuditSearchRequest& req,
                        Done<accord::v1::AuditSearchResponse> done) {
  Run<accord::v1::AuditSearchResponse>(
      caller, "AuditSearch", "", std::move(done),
      [&req] { return ValidateMessage(req); },
      [this, &req](accord::v1::AuditSearchResponse* out) -> absl::Status {
        audit::AuditQuery q;
        q.caller_org = req.caller_org();
        q.user_id = req.user_id();
        q.subject = req.subject();
        q.purpose = req.purpose();
        q.agreement_id = req.agreement_id();
        q.decision = req.decision();
        if (req.time().has_from()) q.from = FromProtoTime(req.time().from());
        if (req.time().has_until()) q.until = FromProtoTime(req.time().until());
        auto page = log_->Search(q, Page(req.page_size(), req.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::SubjectAccessReport(
    const Caller& caller, const accord::v1::SubjectAccessRequest& req,
    Done<accord::v1::SubjectAccessResponse> done) {
  Run<accord::v1::SubjectAccessResponse>(
      caller, "SubjectAccessReport",
      req.page_token().empty() ? "" : "next page", std::move(done),
      [&req] { return ValidateMessage(req); },
      [this, &req](accord::v1::SubjectAccessResponse* out) -> absl::Status {
        const std::vector<accord::v1::SubjectToken> tokens(
            req.subjects().begin(), req.subjects().end());
        auto page = log_->SubjectAccess(
            tokens, Page(req.page_size(), req.page_token()));
        if (!page.ok()) return page.status();
        out->set_report(audit::SubjectAccessReport(page->entries));
        for (auto& e : page->entries) *out->add_disclosures() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::ReviewQueue(const Caller& caller,
                             const accord::v1::ReviewQueueRequest& req,
                             Done<accord::v1::ReviewQueueResponse> done) {
  Run<accord::v1::ReviewQueueResponse>(
      caller, "ReviewQueue", "", std::move(done), NoCheck,
      [this, &req](accord::v1::ReviewQueueResponse* out) -> absl::Status {
        auto page = log_->ReviewQueue(Page(req.page_size(), req.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::MarkReviewed(const Caller& caller,
                              const accord::v1::MarkReviewedRequest& req,
                              Done<accord::v1::MarkReviewedResponse> done) {
  const std::string detail = absl::StrCat("seq ", req.seq());
  if (auto s = ValidateMessage(req); !s.ok()) {
    return access_->RefuseRead(caller, "MarkReviewed", detail, s,
                               [done](absl::Status st) { done(st); });
  }
  access_->AuthoriseRead(
      caller, "MarkReviewed/authorise", detail,
      [this, caller, &req, detail, done = std::move(done)](absl::Status s) {
        if (!s.ok()) return done(s);
        log_->MarkReviewed(
            req.seq(), access_->ReviewerOf(caller), req.note(),
            [this, caller, detail, done](absl::StatusOr<uint64_t> seq) {
              if (seq.ok()) {
                accord::v1::MarkReviewedResponse resp;
                resp.set_audit_seq(*seq);
                return done(std::move(resp));
              }
              // No such entry, or not awaiting review: a refusal, recorded.
              if (seq.status().code() == absl::StatusCode::kNotFound ||
                  seq.status().code() ==
                      absl::StatusCode::kFailedPrecondition) {
                return access_->RefuseRead(
                    caller, "MarkReviewed", detail, seq.status(),
                    [done](absl::Status st) { done(st); });
              }
              done(seq.status());
            });
      });
}

void AuditorApi::GetTreeHead(const Caller& caller,
                             Done<accord::v1::SignedTreeHead> done) {
  Run<accord::v1::SignedTreeHead>(
      caller, "GetTreeHead", "", std::move(done), NoCheck,
      [this](accord::v1::SignedTreeHead* out) -> absl::Status {
        auto sth = log_->SignTreeHeadNow();
        if (!sth.ok()) return sth.status();
        *out = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetInclusionProof(
    const Caller& caller, const accord::v1::InclusionProofRequest& req,
    Done<accord::v1::InclusionProofResponse> done) {
  Run<accord::v1::InclusionProofResponse>(
      caller, "GetInclusionProof", absl::StrCat("leaf ", req.leaf_index()),
      std::move(done), NoCheck,
      [this, &req](accord::v1::InclusionProofResponse* out) -> absl::Status {
        absl::StatusOr<accord::v1::SignedTreeHead> sth =
            req.tree_size() == 0 ? log_->SignTreeHeadNow()
                                 : log_->TreeHeadAt(req.tree_size());
        if (!sth.ok()) return sth.status();
        auto proof = log_->InclusionProof(req.leaf_index(), sth->tree_size());
        if (!proof.ok()) return proof.status();
        auto entry = log_->GetEntry(req.leaf_index());
        if (!entry.ok()) return entry.status();
        *out->mutable_proof() = std::move(*proof);
        *out->mutable_entry() = std::move(*entry);
        *out->mutable_tree_head() = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetConsistencyProof(
    const Caller& caller, const accord::v1::ConsistencyProofRequest& req,
    Done<accord::v1::ConsistencyProof> done) {
  Run<accord::v1::ConsistencyProof>(
      caller, "GetConsistencyProof",
      absl::StrCat(req.first_size(), "..", req.second_size()), std::move(done),
      NoCheck,
      [this, &req](accord::v1::ConsistencyProof* out) -> absl::Status {
        auto proof =
            log_->ConsistencyProof(req.first_size(), req.second_size());
        if (!proof.ok()) return proof.status();
        *out = std::move(*proof);
        return absl::OkStatus();
      });
}

SerialExecutor* AuditorApi::ClaimExportThread(int* index) {
  for (size_t i = 0; i < export_threads_.size(); ++i) {
    bool expected = false;
    if (export_busy_[i].compare_exchange_strong(expected, true)) {
      *index = static_cast<int>(i);
      return export_threads_[i].get();
    }
  }
  return nullptr;
}

void AuditorApi::Export(const Caller& caller,
                        const accord::v1::ExportRequest& req, ExportSink* sink,
                        std::function<void(absl::Status)> done) {
  const std::string detail = absl::StrCat(req.from_seq(), "..", req.to_seq());
  audit::ExportFormat format;
  switch (req.format()) {
    case accord::v1::EXPORT_FORMAT_JSONL:
      format = audit::ExportFormat::kJsonLines;
      break;
    case accord::v1::EXPORT_FORMAT_CSV:
      format = audit::ExportFormat::kCsv;
      break;
    default:
      return access_->RefuseRead(
          caller, "AuditExport", detail,
          absl::InvalidArgumentError(absl::StrCat(
              "field format: ", static_cast<int>(req.format()),
              " is not an export format; use EXPORT_FORMAT_JSONL (1) or "
              "EXPORT_FORMAT_CSV (2)")),
          std::move(done));
  }
  int index = -1;
  SerialExecutor* thread = ClaimExportThread(&index);
  if (thread == nullptr) {
    return access_->RefuseRead(
        caller, "AuditExport", detail,
        absl::ResourceExhaustedError(absl::StrCat(
            options_.max_concurrent_exports,
            " audit exports are already running; try again when one has "
            "finished")),
        std::move(done));
  }
  access_->AuthoriseRead(
      caller, "AuditExport", detail,
      [this, thread, index, format, &req, sink,
       done = std::move(done)](absl::Status s) mutable {
        if (!s.ok()) {
          export_busy_[index] = false;
          return done(s);
        }
        thread->Post([this, index, format, &req, sink,
                      done = std::move(done)]() mutable {
          accord::v1::ExportChunk chunk;
          const absl::Status st = log_->Export(
              req.from_seq(), req.to_seq(), format,
              [&](absl::string_view piece,
                  const audit::ExportProgress& progress) {
                chunk.set_data(std::string(piece));
                chunk.set_entries_so_far(progress.entries_so_far);
                chunk.set_entries_total(progress.entries_total);
                return sink->Write(chunk);
              });
          export_busy_[index] = false;
          done(st);
        });
      });
}

}  // namespace accord::auditor
