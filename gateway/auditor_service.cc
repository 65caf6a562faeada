#include "gateway/auditor_service.h"

#include <algorithm>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "audit/entry.h"
#include "gateway/service.h"
#include "runtime/clock.h"
#include "runtime/status.h"
#include "runtime/textproto.h"

namespace accord::gateway {
namespace {

audit::PageRequest Page(uint32_t size, const std::string& token) {
  audit::PageRequest p;
  p.page_size = size;
  p.page_token = token;
  return p;
}

}  // namespace

template <typename Resp, typename Body>
grpc::ServerUnaryReactor* AuditorService::Unary(
    grpc::CallbackServerContext* ctx, const char* method, std::string detail,
    Resp* response, Body body) {
  auto* reactor = ctx->DefaultReactor();
  Caller caller = CallerFromContext(*ctx, *gateway_);
  gateway_->AuthoriseAuditor(
      caller, method, detail,
      [this, reactor, response,
       body = std::move(body)](absl::Status s) mutable {
        if (!s.ok()) {
          reactor->Finish(ToGrpcStatus(s));
          return;
        }
        worker_.Post([reactor, response, body = std::move(body)]() mutable {
          reactor->Finish(ToGrpcStatus(body(response)));
        });
      });
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::Search(
    grpc::CallbackServerContext* ctx,
    const accord::v1::AuditSearchRequest* request,
    accord::v1::AuditSearchResponse* response) {
  return Unary(
      ctx, "AuditSearch", "", response,
      [this, request](accord::v1::AuditSearchResponse* out) -> absl::Status {
        if (auto s = ValidateMessage(*request); !s.ok()) return s;
        audit::AuditQuery q;
        q.caller_org = request->caller_org();
        q.user_id = request->user_id();
        q.subject = request->subject();
        q.purpose = request->purpose();
        q.agreement_id = request->agreement_id();
        q.decision = request->decision();
        if (request->time().has_from())
          q.from = FromProtoTime(request->time().from());
        if (request->time().has_until())
          q.until = FromProtoTime(request->time().until());
        auto page =
            log_->Search(q, Page(request->page_size(), request->page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditorService::SubjectAccessReport(
    grpc::CallbackServerContext* ctx,
    const accord::v1::SubjectAccessRequest* request,
    accord::v1::SubjectAccessResponse* response) {
  return Unary(
      ctx, "SubjectAccessReport", "", response,
      [this, request](accord::v1::SubjectAccessResponse* out) -> absl::Status {
        if (auto s = ValidateMessage(*request); !s.ok()) return s;
        std::vector<accord::v1::SubjectToken> tokens(
            request->subjects().begin(), request->subjects().end());
        std::vector<accord::v1::AuditEntry> all;
        audit::PageRequest page = Page(audit::kMaxPageSize, "");
        do {
          auto p = log_->SubjectAccess(tokens, page);
          if (!p.ok()) return p.status();
          for (auto& e : p->entries) all.push_back(std::move(e));
          page.page_token = p->next_page_token;
        } while (!page.page_token.empty());
        out->set_report(audit::SubjectAccessReport(all));
        for (auto& e : all) *out->add_disclosures() = std::move(e);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditorService::ReviewQueue(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ReviewQueueRequest* request,
    accord::v1::ReviewQueueResponse* response) {
  return Unary(
      ctx, "ReviewQueue", "", response,
      [this, request](accord::v1::ReviewQueueResponse* out) -> absl::Status {
        auto page = log_->ReviewQueue(
            Page(request->page_size(), request->page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditorService::MarkReviewed(
    grpc::CallbackServerContext* ctx,
    const accord::v1::MarkReviewedRequest* request,
    accord::v1::MarkReviewedResponse* response) {
  // The review is itself an audit entry, appended by the log; authorise first.
  auto* reactor = ctx->DefaultReactor();
  Caller caller = CallerFromContext(*ctx, *gateway_);
  if (auto s = ValidateMessage(*request); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  gateway_->AuthoriseAuditor(
      caller, "MarkReviewed/authorise", absl::StrCat("seq ", request->seq()),
      [this, reactor, request, response, caller](absl::Status s) {
        if (!s.ok()) return reactor->Finish(ToGrpcStatus(s));
        audit::Reviewer reviewer;
        reviewer.caller = caller.principal->uri;
        reviewer.actor = caller.actor;
        log_->MarkReviewed(
            request->seq(), reviewer, request->note(),
            [reactor, response](absl::StatusOr<uint64_t> seq) {
              if (!seq.ok()) return reactor->Finish(ToGrpcStatus(seq.status()));
              response->set_audit_seq(*seq);
              reactor->Finish(grpc::Status::OK);
            });
      });
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::GetTreeHead(
    grpc::CallbackServerContext* ctx, const accord::v1::GetTreeHeadRequest*,
    accord::v1::SignedTreeHead* response) {
  return Unary(ctx, "GetTreeHead", "", response,
               [this](accord::v1::SignedTreeHead* out) -> absl::Status {
                 auto sth = log_->SignTreeHeadNow();
                 if (!sth.ok()) return sth.status();
                 *out = std::move(*sth);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* AuditorService::GetInclusionProof(
    grpc::CallbackServerContext* ctx,
    const accord::v1::InclusionProofRequest* request,
    accord::v1::InclusionProofResponse* response) {
  return Unary(
      ctx, "GetInclusionProof", absl::StrCat("leaf ", request->leaf_index()),
      response,
      [this, request](accord::v1::InclusionProofResponse* out) -> absl::Status {
        absl::StatusOr<accord::v1::SignedTreeHead> sth =
            request->tree_size() == 0 ? log_->SignTreeHeadNow()
                                      : log_->TreeHeadAt(request->tree_size());
        if (!sth.ok()) return sth.status();
        auto proof =
            log_->InclusionProof(request->leaf_index(), sth->tree_size());
        if (!proof.ok()) return proof.status();
        auto entry = log_->GetEntry(request->leaf_index());
        if (!entry.ok()) return entry.status();
        *out->mutable_proof() = std::move(*proof);
        *out->mutable_entry() = std::move(*entry);
        *out->mutable_tree_head() = std::move(*sth);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AuditorService::GetConsistencyProof(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ConsistencyProofRequest* request,
    accord::v1::ConsistencyProof* response) {
  return Unary(
      ctx, "GetConsistencyProof",
      absl::StrCat(request->first_size(), "..", request->second_size()),
      response,
      [this, request](accord::v1::ConsistencyProof* out) -> absl::Status {
        auto proof = log_->ConsistencyProof(request->first_size(),
                                            request->second_size());
        if (!proof.ok()) return proof.status();
        *out = std::move(*proof);
        return absl::OkStatus();
      });
}

// Streams an export. The log produces the export (one consistent snapshot,
// with its header, entries and signed tree head) on a thread of its own,
// which hands each ~64 KiB piece to the stream and waits until gRPC has
// written it: memory stays bounded whatever the log's size, and a slow or
// departed auditor only ever holds up their own export. Exports are rare,
// long-running auditor operations, so a thread each is the simple choice.
class ExportReactor final
    : public grpc::ServerWriteReactor<accord::v1::ExportChunk> {
 public:
  ExportReactor(audit::AuditLog* log, accord::v1::ExportRequest request)
      : log_(log), request_(std::move(request)) {}

  void Begin(absl::Status authorised) {
    if (!authorised.ok()) return Finish(ToGrpcStatus(authorised));
    thread_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }

  void OnDone() override {
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
    delete this;
  }

 private:
  void Run() {
    const auto format = request_.format() == accord::v1::EXPORT_FORMAT_CSV
                            ? audit::ExportFormat::kCsv
                            : audit::ExportFormat::kJsonLines;
    const absl::Status s = log_->Export(
        request_.from_seq(), request_.to_seq(), format,
        [this](absl::string_view piece, const audit::ExportProgress& progress) {
          return Send(piece, progress);
        });
    Finish(ToGrpcStatus(s));
  }

  absl::Status Send(absl::string_view piece,
                    const audit::ExportProgress& progress) {
    absl::MutexLock lock(&mu_);
    if (cancelled_)
      return absl::CancelledError("the auditor closed the export stream");
    chunk_.set_data(std::string(piece));
    chunk_.set_entries_so_far(progress.entries_so_far);
    chunk_.set_entries_total(progress.entries_total);
    writing_ = true;
    StartWrite(&chunk_);
    mu_.Await(absl::Condition(
        +[](ExportReactor* r)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return !r->writing_; },
        this));
    if (cancelled_)
      return absl::CancelledError("the auditor closed the export stream");
    return absl::OkStatus();
  }

  audit::AuditLog* log_;
  const accord::v1::ExportRequest request_;
  std::thread thread_;
  absl::Mutex mu_;
  accord::v1::ExportChunk chunk_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerWriteReactor<accord::v1::ExportChunk>* AuditorService::Export(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ExportRequest* request) {
  auto* reactor = new ExportReactor(log_, *request);
  Caller caller = CallerFromContext(*ctx, *gateway_);
  gateway_->AuthoriseAuditor(
      caller, "AuditExport",
      absl::StrCat(request->from_seq(), "..", request->to_seq()),
      [reactor](absl::Status s) { reactor->Begin(s); });
  return reactor;
}

}  // namespace accord::gateway
