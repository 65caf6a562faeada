#include "gateway/auditor_api.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "runtime/clock.h"
#include "runtime/textproto.h"

namespace accord::gateway {
namespace {

audit::PageRequest Page(uint32_t size, const std::string& token) {
  audit::PageRequest p;
  p.page_size = size;
  p.page_token = token;
  return p;
}

absl::Status NoCheck() { return absl::OkStatus(); }

}  // namespace

AuditorApi::AuditorApi(Pipeline* pipeline, audit::AuditLog* log,
                       AuditorApiOptions options)
    : pipeline_(pipeline), log_(log), options_(options) {
  const int n = std::max(1, options_.max_concurrent_exports);
  export_busy_ = std::make_unique<std::atomic<bool>[]>(n);
  for (int i = 0; i < n; ++i) {
    export_busy_[i] = false;
    export_threads_.push_back(std::make_unique<SerialExecutor>());
  }
}

AuditorApi::~AuditorApi() = default;

template <typename Resp, typename Check, typename Body>
void AuditorApi::Read(const Method& method, Caller caller, std::string detail,
                      Done<Resp> reply, Check check, Body body) {
  pipeline_->Run<Resp>(
      method, std::move(caller), std::move(reply),
      [this, detail = std::move(detail), check = std::move(check),
       body = std::move(body)](std::shared_ptr<const Call> call,
                               Done<Resp> done) mutable {
        accord::v1::AuditEntry entry = call->Entry();
        entry.set_detail(detail);
        if (absl::Status s = check(); !s.ok()) {
          return pipeline_->Refuse(*call, std::move(entry), std::move(s),
                                   std::move(done));
        }
        entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
        log_->Append(std::move(entry), [this, call, done = std::move(done),
                                        body = std::move(body)](
                                           absl::StatusOr<uint64_t> seq) mutable {
          if (!seq.ok()) return done(pipeline_->AuditFailure(seq.status()));
          worker_.Post([call, done = std::move(done),
                        body = std::move(body)]() mutable {
            Resp out;
            absl::Status s = body(*call, &out);
            if (!s.ok()) return done(s);
            done(std::move(out));
          });
        });
      });
}

void AuditorApi::Search(Caller caller,
                        const accord::v1::AuditSearchRequest& request,
                        Done<accord::v1::AuditSearchResponse> done) {
  Read<accord::v1::AuditSearchResponse>(
      methods::kAuditSearch, std::move(caller), "", std::move(done),
      [&request] { return ValidateMessage(request); },
      [this, &request](const Call&,
                       accord::v1::AuditSearchResponse* out) -> absl::Status {
        audit::AuditQuery q;
        q.caller_org = request.caller_org();
        q.user_id = request.user_id();
        q.subject = request.subject();
        q.purpose = request.purpose();
        q.agreement_id = request.agreement_id();
        q.decision = request.decision();
        if (request.time().has_from())
          q.from = FromProtoTime(request.time().from());
        if (request.time().has_until())
          q.until = FromProtoTime(request.time().until());
        auto page =
            log_->Search(q, Page(request.page_size(), request.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::SubjectAccessReport(
    Caller caller, const accord::v1::SubjectAccessRequest& request,
    Done<accord::v1::SubjectAccessResponse> done) {
  Read<accord::v1::SubjectAccessResponse>(
      methods::kSubjectAccessReport, std::move(caller),
      request.page_token().empty() ? "" : "next page", std::move(done),
      [&request] { return ValidateMessage(request); },
      [this, &request](const Call&,
                       accord::v1::SubjectAccessResponse* out) -> absl::Status {
        std::vector<accord::v1::SubjectToken> tokens(
            request.subjects().begin(), request.subjects().end());
        auto page = log_->SubjectAccess(
            tokens, Page(request.page_size(), request.page_token()));
        if (!page.ok()) return page.status();
        out->set_report(audit::SubjectAccessReport(page->entries));
        for (auto& e : page->entries) *out->add_disclosures() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::ReviewQueue(Caller caller,
                             const accord::v1::ReviewQueueRequest& request,
                             Done<accord::v1::ReviewQueueResponse> done) {
  Read<accord::v1::ReviewQueueResponse>(
      methods::kReviewQueue, std::move(caller), "", std::move(done), NoCheck,
      [this, &request](const Call&,
                       accord::v1::ReviewQueueResponse* out) -> absl::Status {
        auto page =
            log_->ReviewQueue(Page(request.page_size(), request.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::MarkReviewed(Caller caller,
                              const accord::v1::MarkReviewedRequest& request,
                              Done<accord::v1::MarkReviewedResponse> reply) {
  // The review is itself the access entry: the log appends it (with the
  // reviewer and the note) and marks the original, atomically.
  pipeline_->Run<accord::v1::MarkReviewedResponse>(
      methods::kMarkReviewed, std::move(caller), std::move(reply),
      [this, &request](std::shared_ptr<const Call> call,
                       Done<accord::v1::MarkReviewedResponse> done) {
        accord::v1::AuditEntry entry = call->Entry();
        entry.set_reviews_seq(request.seq());
        if (auto s = ValidateMessage(request); !s.ok()) {
          return pipeline_->Refuse(*call, std::move(entry), std::move(s),
                                   std::move(done));
        }
        audit::Reviewer reviewer;
        reviewer.caller = call->principal().uri;
        reviewer.actor = call->caller().actor;
        log_->MarkReviewed(
            request.seq(), reviewer, request.note(),
            [this, call, entry = std::move(entry), done = std::move(done)](
                absl::StatusOr<uint64_t> seq) mutable {
              if (seq.ok()) {
                accord::v1::MarkReviewedResponse resp;
                resp.set_audit_seq(*seq);
                return done(std::move(resp));
              }
              if (seq.status().code() == absl::StatusCode::kNotFound ||
                  seq.status().code() ==
                      absl::StatusCode::kFailedPrecondition) {
                return pipeline_->Refuse(*call, std::move(entry), seq.status(),
                                         std::move(done));
              }
              done(pipeline_->AuditFailure(seq.status()));
            });
      });
}

void AuditorApi::GetTreeHead(Caller caller,
                             const accord::v1::GetTreeHeadRequest&,
                             Done<accord::v1::SignedTreeHead> done) {
  Read<accord::v1::SignedTreeHead>(
      methods::kGetTreeHead, std::move(caller), "", std::move(done), NoCheck,
      [this](const Call&, accord::v1::SignedTreeHead* out) -> absl::Status {
        auto sth = log_->SignTreeHeadNow();
        if (!sth.ok()) return sth.status();
        *out = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetInclusionProof(
    Caller caller, const accord::v1::InclusionProofRequest& request,
    Done<accord::v1::InclusionProofResponse> done) {
  Read<accord::v1::InclusionProofResponse>(
      methods::kGetInclusionProof, std::move(caller),
      absl::StrCat("leaf ", request.leaf_index()), std::move(done), NoCheck,
      [this, &request](const Call&, accord::v1::InclusionProofResponse* out)
          -> absl::Status {
        absl::StatusOr<accord::v1::SignedTreeHead> sth =
            request.tree_size() == 0 ? log_->SignTreeHeadNow()
                                     : log_->TreeHeadAt(request.tree_size());
        if (!sth.ok()) return sth.status();
        auto proof = log_->InclusionProof(request.leaf_index(), sth->tree_size());
        if (!proof.ok()) return proof.status();
        auto entry = log_->GetEntry(request.leaf_index());
        if (!entry.ok()) return entry.status();
        *out->mutable_proof() = std::move(*proof);
        *out->mutable_entry() = std::move(*entry);
        *out->mutable_tree_head() = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetConsistencyProof(
    Caller caller, const accord::v1::ConsistencyProofRequest& request,
    Done<accord::v1::ConsistencyProof> done) {
  Read<accord::v1::ConsistencyProof>(
      methods::kGetConsistencyProof, std::move(caller),
      absl::StrCat(request.first_size(), "..", request.second_size()),
      std::move(done), NoCheck,
      [this, &request](const Call&,
                       accord::v1::ConsistencyProof* out) -> absl::Status {
        auto proof =
            log_->ConsistencyProof(request.first_size(), request.second_size());
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

void AuditorApi::Export(Caller caller, const accord::v1::ExportRequest& request,
                        ExportSink* sink,
                        std::function<void(absl::Status)> finished) {
  struct Started {};  // the export's outcome
  Done<Started> finish = [finished](absl::StatusOr<Started> s) {
    finished(s.ok() ? absl::OkStatus() : s.status());
  };
  pipeline_->Run<Started>(
      methods::kAuditExport, std::move(caller), std::move(finish),
      [this, &request, sink](std::shared_ptr<const Call> call,
                             Done<Started> done) {
        accord::v1::AuditEntry entry = call->Entry();
        entry.set_detail(
            absl::StrCat(request.from_seq(), "..", request.to_seq()));
        audit::ExportFormat format;
        switch (request.format()) {
          case accord::v1::EXPORT_FORMAT_JSONL:
            format = audit::ExportFormat::kJsonLines;
            break;
          case accord::v1::EXPORT_FORMAT_CSV:
            format = audit::ExportFormat::kCsv;
            break;
          default:
            return pipeline_->Refuse(
                *call, std::move(entry),
                absl::InvalidArgumentError(absl::StrCat(
                    "field format: ", static_cast<int>(request.format()),
                    " is not an export format; use EXPORT_FORMAT_JSONL (1) "
                    "or EXPORT_FORMAT_CSV (2)")),
                std::move(done));
        }
        int index = -1;
        SerialExecutor* thread = ClaimExportThread(&index);
        if (thread == nullptr) {
          return pipeline_->Refuse(
              *call, std::move(entry),
              absl::ResourceExhaustedError(absl::StrCat(
                  options_.max_concurrent_exports,
                  " audit exports are already running; try again when one "
                  "has finished")),
              std::move(done));
        }
        entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
        log_->Append(std::move(entry), [this, call, thread, index, format,
                                        &request, sink, done = std::move(done)](
                                           absl::StatusOr<uint64_t> seq) mutable {
          if (!seq.ok()) {
            export_busy_[index] = false;
            return done(pipeline_->AuditFailure(seq.status()));
          }
          thread->Post([this, call, index, format, &request, sink,
                        done = std::move(done)]() mutable {
            accord::v1::ExportChunk chunk;
            const absl::Status s = log_->Export(
                request.from_seq(), request.to_seq(), format,
                [&](absl::string_view piece,
                    const audit::ExportProgress& progress) {
                  chunk.set_data(std::string(piece));
                  chunk.set_entries_so_far(progress.entries_so_far);
                  chunk.set_entries_total(progress.entries_total);
                  return sink->Write(chunk);
                });
            export_busy_[index] = false;
            if (!s.ok()) return done(s);
            done(Started{});
          });
        });
      });
}

}  // namespace accord::gateway
