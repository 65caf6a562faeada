#include "auditor/auditor_service.h"

#include <utility>

#include "absl/synchronization/mutex.h"
#include "runtime/status.h"

namespace accord::auditor {

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

// Streams an export: the AuditorApi writes each ~64 KiB chunk from an export
// thread, which waits here until gRPC has sent it, so memory stays bounded
// and a slow or departed reader holds up only their own export. The reactor
// is finished once, when the export ends; gRPC deletes nothing before that.
class ExportReactor final
    : public grpc::ServerWriteReactor<accord::v1::ExportChunk>,
      public AuditorApi::ExportSink {
 public:
  explicit ExportReactor(accord::v1::ExportRequest request)
      : request_(std::move(request)) {}
  const accord::v1::ExportRequest& request() const { return request_; }

  absl::Status Write(const accord::v1::ExportChunk& chunk) override {
    absl::MutexLock lock(&mu_);
    if (cancelled_)
      return absl::CancelledError("the reader closed the export stream");
    writing_ = true;
    StartWrite(&chunk);
    mu_.Await(absl::Condition(
        +[](ExportReactor* r)
             ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) { return !r->writing_; },
        this));
    if (cancelled_)
      return absl::CancelledError("the reader closed the export stream");
    return absl::OkStatus();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }

  void OnDone() override { delete this; }

 private:
  const accord::v1::ExportRequest request_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<accord::v1::ExportChunk>* AuditorService::Export(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ExportRequest* request) {
  auto* reactor = new ExportReactor(*request);
  api_->Export(CallerOf(ctx), reactor->request(), reactor,
               [reactor](absl::Status s) { reactor->Finish(ToGrpcStatus(s)); });
  return reactor;
}

}  // namespace accord::auditor
