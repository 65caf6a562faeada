#include "auditor/auditor_service.h"

#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "runtime/status.h"

namespace accord::auditor {

Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const std::string& partnership,
                         const RevocationList* revocation) {
  Caller caller;
  if (auto auth = ctx.auth_context()) {
    caller.principal = PeerPrincipal(*auth, partnership);
    caller.peer_uris = PeerUris(*auth);
    if (caller.principal.ok() && revocation != nullptr) {
      if (auto s = revocation->CheckPeer(*auth); !s.ok()) caller.principal = s;
    }
  }
  caller.actor = ActorFromMetadata(ctx);
  return caller;
}

namespace {

template <typename Resp>
Done<Resp> FinishInto(grpc::ServerUnaryReactor* reactor, Resp* response) {
  return [reactor, response](absl::StatusOr<Resp> result) {
    if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
    *response = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

grpc::ServerUnaryReactor* AuditorService::Search(
    grpc::CallbackServerContext* ctx,
    const accord::v1::AuditSearchRequest* request,
    accord::v1::AuditSearchResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->Search(CallerOf(ctx), *request, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::SubjectAccessReport(
    grpc::CallbackServerContext* ctx,
    const accord::v1::SubjectAccessRequest* request,
    accord::v1::SubjectAccessResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->SubjectAccessReport(CallerOf(ctx), *request,
                            FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::ReviewQueue(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ReviewQueueRequest* request,
    accord::v1::ReviewQueueResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->ReviewQueue(CallerOf(ctx), *request, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::MarkReviewed(
    grpc::CallbackServerContext* ctx,
    const accord::v1::MarkReviewedRequest* request,
    accord::v1::MarkReviewedResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->MarkReviewed(CallerOf(ctx), *request, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::GetTreeHead(
    grpc::CallbackServerContext* ctx, const accord::v1::GetTreeHeadRequest*,
    accord::v1::SignedTreeHead* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->GetTreeHead(CallerOf(ctx), FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::GetInclusionProof(
    grpc::CallbackServerContext* ctx,
    const accord::v1::InclusionProofRequest* request,
    accord::v1::InclusionProofResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->GetInclusionProof(CallerOf(ctx), *request,
                          FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* AuditorService::GetConsistencyProof(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ConsistencyProofRequest* request,
    accord::v1::ConsistencyProof* response) {
  auto* reactor = ctx->DefaultReactor();
  api_->GetConsistencyProof(CallerOf(ctx), *request,
                            FinishInto(reactor, response));
  return reactor;
}

namespace {

// One export stream. Once the access is recorded, a thread of its own runs
// the export (one read snapshot), handing each ~64 KiB piece to the stream
// and waiting until gRPC has written it: memory stays bounded whatever the
// log's size, and a slow reader only holds up their own export.
class ExportReactor final
    : public grpc::ServerWriteReactor<accord::v1::ExportChunk> {
 public:
  ExportReactor(AuditorApi* api, accord::v1::ExportRequest request)
      : api_(api), request_(std::move(request)) {}

  void Begin(const absl::Status& authorised) {
    if (!authorised.ok()) return Finish(ToGrpcStatus(authorised));
    thread_ = std::thread([this] {
      Finish(ToGrpcStatus(
          api_->Export(request_, [this](absl::string_view piece,
                                        const audit::ExportProgress& progress) {
            return Send(piece, progress);
          })));
    });
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
  absl::Status Send(absl::string_view piece,
                    const audit::ExportProgress& progress) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return absl::CancelledError("the reader closed the export");
    chunk_.set_data(std::string(piece));
    chunk_.set_entries_so_far(progress.entries_so_far);
    chunk_.set_entries_total(progress.entries_total);
    writing_ = true;
    StartWrite(&chunk_);
    mu_.Await(absl::Condition(
        +[](ExportReactor* r)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return !r->writing_; },
        this));
    if (cancelled_) return absl::CancelledError("the reader closed the export");
    return absl::OkStatus();
  }

  AuditorApi* const api_;
  const accord::v1::ExportRequest request_;
  std::thread thread_;
  absl::Mutex mu_;
  accord::v1::ExportChunk chunk_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<accord::v1::ExportChunk>* AuditorService::Export(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ExportRequest* request) {
  auto* reactor = new ExportReactor(api_, *request);
  api_->AuthoriseExport(CallerOf(ctx), *request,
                        [reactor](absl::Status s) { reactor->Begin(s); });
  return reactor;
}

}  // namespace accord::auditor
