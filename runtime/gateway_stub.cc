#include "runtime/gateway_stub.h"

#include <functional>
#include <utility>

#include "runtime/identity.h"

namespace accord {
namespace {

namespace v1 = accord::v1;

// Every method of accord.v1.Gateway: name, request and response.
#define ACCORD_GATEWAY_METHODS(X)                                  \
  X(Query, QueryRequest, QueryResponse)                            \
  X(ListAgreements, ListAgreementsRequest, ListAgreementsResponse) \
  X(SendReferral, SendReferralRequest, SendReferralResponse)       \
  X(UpdateReferral, UpdateReferralRequest, UpdateReferralResponse) \
  X(GetReferral, GetReferralRequest, GetReferralResponse)          \
  X(GetReferralKey, GetReferralKeyRequest, GetReferralKeyResponse) \
  X(Statistics, StatisticsRequest, StatisticsResponse)

// Each call takes the current stub for as long as it takes to start.
class ForwardingGatewayStub final : public v1::Gateway::StubInterface {
 public:
  explicit ForwardingGatewayStub(std::unique_ptr<ServerChannel> channel)
      : stub_(std::move(channel)), async_(&stub_) {}

#define ACCORD_FORWARD_SYNC(Method, Req, Resp)                            \
  grpc::Status Method(grpc::ClientContext* ctx, const v1::Req& request,   \
                      v1::Resp* response) override {                      \
    return stub_.Get()->Method(ctx, request, response);                   \
  }
  ACCORD_GATEWAY_METHODS(ACCORD_FORWARD_SYNC)
#undef ACCORD_FORWARD_SYNC

  class Async final : public async_interface {
   public:
    explicit Async(ServerStub<v1::Gateway>* stub) : stub_(stub) {}
#define ACCORD_FORWARD_CALLBACK(Method, Req, Resp)                          \
  void Method(grpc::ClientContext* ctx, const v1::Req* request,             \
              v1::Resp* response, std::function<void(grpc::Status)> done)   \
      override {                                                            \
    stub_->Get()->async()->Method(ctx, request, response, std::move(done)); \
  }                                                                         \
  void Method(grpc::ClientContext* ctx, const v1::Req* request,             \
              v1::Resp* response, grpc::ClientUnaryReactor* reactor)        \
      override {                                                            \
    stub_->Get()->async()->Method(ctx, request, response, reactor);         \
  }
    ACCORD_GATEWAY_METHODS(ACCORD_FORWARD_CALLBACK)
#undef ACCORD_FORWARD_CALLBACK

   private:
    ServerStub<v1::Gateway>* const stub_;
  };
  async_interface* async() override { return &async_; }

 private:
#define ACCORD_FORWARD_CQ(Method, Req, Resp)                                  \
  grpc::ClientAsyncResponseReaderInterface<v1::Resp>* Async##Method##Raw(     \
      grpc::ClientContext* ctx, const v1::Req& request,                       \
      grpc::CompletionQueue* cq) override {                                   \
    return stub_.Get()->Async##Method(ctx, request, cq).release();            \
  }                                                                           \
  grpc::ClientAsyncResponseReaderInterface<v1::Resp>*                         \
      PrepareAsync##Method##Raw(grpc::ClientContext* ctx,                     \
                                const v1::Req& request,                       \
                                grpc::CompletionQueue* cq) override {         \
    return stub_.Get()->PrepareAsync##Method(ctx, request, cq).release();     \
  }
  ACCORD_GATEWAY_METHODS(ACCORD_FORWARD_CQ)
#undef ACCORD_FORWARD_CQ

  ServerStub<v1::Gateway> stub_;
  Async async_;
};

#undef ACCORD_GATEWAY_METHODS

}  // namespace

std::unique_ptr<v1::Gateway::StubInterface> MakeGatewayStub(
    std::unique_ptr<ServerChannel> channel) {
  return std::make_unique<ForwardingGatewayStub>(std::move(channel));
}

absl::StatusOr<std::unique_ptr<v1::Gateway::StubInterface>> DialGateway(
    ServerChannelOptions options, const std::string& partnership_id) {
  options.expected_identity =
      SpiffeId(partnership_id, PrincipalKind::kGateway);
  options.server_name = "the gateway";
  auto channel = ServerChannel::Open(std::move(options));
  if (!channel.ok()) return channel.status();
  return MakeGatewayStub(*std::move(channel));
}

}  // namespace accord
