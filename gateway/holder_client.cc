#include "gateway/holder_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "runtime/identity.h"
#include "runtime/server_channel.h"
#include "runtime/status.h"
#include "runtime/tls.h"

namespace accord::gateway {
namespace {

using HolderStub = ServerStub<accord::v1::Holder>;

constexpr int kMaxStatisticsAnswerBytes = 64 << 20;

class GrpcHolderClients final : public HolderClients {
 public:
  void Disclose(const std::string& holder_org,
                accord::v1::DiscloseRequest request, absl::Duration deadline,
                DiscloseDone done) override {
    Answered(holder_org, std::move(request), deadline, std::move(done),
             [](accord::v1::Holder::Stub* stub, grpc::ClientContext* ctx,
                const accord::v1::DiscloseRequest* req,
                accord::v1::DiscloseResponse* resp,
                std::function<void(grpc::Status)> cb) {
               stub->async()->Disclose(ctx, req, resp, std::move(cb));
             });
  }

  void Statistics(const std::string& holder_org,
                  accord::v1::HolderStatisticsRequest request,
                  absl::Duration deadline, StatisticsDone done) override {
    Answered(holder_org, std::move(request), deadline, std::move(done),
             [](accord::v1::Holder::Stub* stub, grpc::ClientContext* ctx,
                const accord::v1::HolderStatisticsRequest* req,
                accord::v1::HolderStatisticsResponse* resp,
                std::function<void(grpc::Status)> cb) {
               stub->async()->Statistics(ctx, req, resp, std::move(cb));
             });
  }

  void DeliverReferral(const std::string& org,
                       const accord::v1::DeliverReferralRequest& request,
                       absl::Duration deadline, ReferralDone done) override {
    Call<accord::v1::DeliverReferralRequest,
         accord::v1::DeliverReferralResponse>(
        org, request, deadline, std::move(done),
        [](accord::v1::Holder::Stub* stub, grpc::ClientContext* ctx,
           const accord::v1::DeliverReferralRequest* req,
           accord::v1::DeliverReferralResponse* resp,
           std::function<void(grpc::Status)> cb) {
          stub->async()->DeliverReferral(ctx, req, resp, std::move(cb));
        });
  }

  void NotifyReferralStatus(
      const std::string& org,
      const accord::v1::NotifyReferralStatusRequest& request,
      absl::Duration deadline, ReferralDone done) override {
    Call<accord::v1::NotifyReferralStatusRequest,
         accord::v1::NotifyReferralStatusResponse>(
        org, request, deadline, std::move(done),
        [](accord::v1::Holder::Stub* stub, grpc::ClientContext* ctx,
           const accord::v1::NotifyReferralStatusRequest* req,
           accord::v1::NotifyReferralStatusResponse* resp,
           std::function<void(grpc::Status)> cb) {
          stub->async()->NotifyReferralStatus(ctx, req, resp, std::move(cb));
        });
  }

  bool Knows(const std::string& holder_org) const override {
    return holders_.count(holder_org) > 0;
  }

  std::map<std::string, std::unique_ptr<HolderStub>> holders_;

 private:
  HolderStub* Find(const std::string& org) const {
    auto it = holders_.find(org);
    return it == holders_.end() ? nullptr : it->second.get();
  }

  // One asynchronous unary call whose answer goes to `done` with its status;
  // the request is moved in, and the call's state lives until its callback
  // runs.
  template <typename Req, typename Resp, typename Start>
  void Answered(const std::string& org, Req request, absl::Duration deadline,
                std::function<void(absl::Status, Resp)> done, Start start) {
    HolderStub* holder = Find(org);
    if (holder == nullptr) {
      done(absl::NotFoundError(absl::StrCat(org, " has no agent address")), {});
      return;
    }
    struct State {
      grpc::ClientContext ctx;
      Req request;
      Resp response;
      std::function<void(absl::Status, Resp)> done;
    };
    auto* state = new State;
    state->done = std::move(done);
    state->request = std::move(request);
    state->ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    start(holder->Get().get(), &state->ctx, &state->request, &state->response,
          [state, holder](grpc::Status status) {
            state->done(FromGrpcStatus(holder->channel().ForCaller(status)),
                        std::move(state->response));
            delete state;
          });
  }

  // One asynchronous unary call whose state lives until its callback runs.
  template <typename Req, typename Resp, typename Start>
  void Call(const std::string& org, const Req& request, absl::Duration deadline,
            ReferralDone done, Start start) {
    HolderStub* holder = Find(org);
    if (holder == nullptr) {
      done(absl::NotFoundError(absl::StrCat(org, " has no agent address")));
      return;
    }
    struct State {
      grpc::ClientContext ctx;
      Req request;
      Resp response;
      ReferralDone done;
    };
    auto* state = new State;
    state->request = request;
    state->done = std::move(done);
    state->ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    start(holder->Get().get(), &state->ctx, &state->request, &state->response,
          [state, holder](grpc::Status status) {
            state->done(FromGrpcStatus(holder->channel().ForCaller(status)));
            delete state;
          });
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<HolderClients>> MakeHolderClients(
    const accord::v1::Partnership& partnership, const accord::v1::TlsFiles& tls,
    const RevocationList* revocation, const std::string& log_prefix) {
  auto clients = std::make_unique<GrpcHolderClients>();
  for (const auto& org : partnership.organisations()) {
    if (org.agent_address().empty()) continue;
    ServerChannelOptions options;
    options.address = org.agent_address();
    options.tls = tls;
    options.expected_identity =
        SpiffeId(partnership.id(), PrincipalKind::kAgent, org.id());
    options.server_name = "the holder's agent";
    options.revocation = revocation;
    options.log_prefix = absl::StrCat(log_prefix, ": holder ", org.id());
    // An agent back from an outage is reached within seconds: referral
    // delivery keeps its own back-off on top.
    options.args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    // A statistics answer carries a keyed value per person counted
    // (stats/people.h): about 2 MB per 100,000 people.
    options.args.SetMaxReceiveMessageSize(kMaxStatisticsAnswerBytes);
    auto channel = ServerChannel::Open(std::move(options));
    if (!channel.ok()) return channel.status();
    clients->holders_[org.id()] =
        std::make_unique<HolderStub>(*std::move(channel));
  }
  return clients;
}

}  // namespace accord::gateway
