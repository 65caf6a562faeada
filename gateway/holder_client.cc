#include "gateway/holder_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "absl/strings/str_cat.h"
#include "runtime/identity.h"
#include "runtime/tls.h"

namespace accord::gateway {

absl::Status HolderCallStatus(const grpc::Status& status,
                              std::string* log_detail) {
  if (status.ok()) return absl::OkStatus();
  if (log_detail != nullptr) {
    *log_detail = absl::StrCat(static_cast<int>(status.error_code()), ": ",
                               status.error_message());
  }
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(
          "the holder's agent did not answer in time");
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError("the holder's agent is unreachable");
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::UnavailableError("the holder's agent failed to answer");
    default:
      break;
  }
  // The agent's own refusal: its words, bounded and printable.
  std::string message;
  for (char c : status.error_message()) {
    if (message.size() >= 300) break;
    message.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("the holder's agent refused: ", message));
}

namespace {

// Transport detail for the process log, at most one line per holder every
// five seconds.
class FailureLog {
 public:
  void Report(const std::string& org, const std::string& detail) {
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      absl::Time& last = last_[org];
      if (now - last < absl::Seconds(5)) return;
      last = now;
    }
    std::fprintf(stderr, "accord-gateway: call to %s's agent failed: %s\n",
                 org.c_str(), detail.c_str());
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::Time> last_ ABSL_GUARDED_BY(mu_);
};

class GrpcHolderClients final : public HolderClients {
 public:
  void Disclose(const std::string& holder_org,
                accord::v1::DiscloseRequest request, absl::Duration deadline,
                DiscloseDone done) override {
    auto it = stubs_.find(holder_org);
    if (it == stubs_.end()) {
      done(absl::NotFoundError(
               absl::StrCat(holder_org, " has no agent address")),
           {});
      return;
    }
    // The call's state lives until its callback runs.
    struct Call {
      grpc::ClientContext ctx;
      accord::v1::DiscloseRequest request;
      accord::v1::DiscloseResponse response;
      DiscloseDone done;
    };
    auto* call = new Call;
    call->done = std::move(done);
    call->request = std::move(request);
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    it->second->async()->Disclose(
        &call->ctx, &call->request, &call->response,
        [this, call, holder_org](grpc::Status status) {
          call->done(Converted(holder_org, status), std::move(call->response));
          delete call;
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
    return stubs_.count(holder_org) > 0;
  }

  std::map<std::string, std::unique_ptr<accord::v1::Holder::Stub>> stubs_;

 private:
  absl::Status Converted(const std::string& org, const grpc::Status& status) {
    std::string detail;
    absl::Status s = HolderCallStatus(status, &detail);
    if (!s.ok()) failures_.Report(org, detail);
    return s;
  }

  FailureLog failures_;

  // One asynchronous unary call whose state lives until its callback runs.
  template <typename Req, typename Resp, typename Start>
  void Call(const std::string& org, const Req& request, absl::Duration deadline,
            ReferralDone done, Start start) {
    auto it = stubs_.find(org);
    if (it == stubs_.end()) {
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
    start(it->second.get(), &state->ctx, &state->request, &state->response,
          [this, state, org](grpc::Status status) {
            state->done(Converted(org, status));
            delete state;
          });
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<HolderClients>> MakeHolderClients(
    const accord::v1::Partnership& partnership,
    const accord::v1::TlsFiles& tls) {
  auto clients = std::make_unique<GrpcHolderClients>();
  for (const auto& org : partnership.organisations()) {
    if (org.agent_address().empty()) continue;
    auto creds = MakeChannelCredentials(
        tls, SpiffeId(partnership.id(), PrincipalKind::kAgent, org.id()));
    if (!creds.ok()) return creds.status();
    grpc::ChannelArguments args = DefaultChannelArguments();
    // An agent back from an outage is reached within seconds: referral
    // delivery keeps its own back-off on top.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
    auto channel = grpc::CreateCustomChannel(org.agent_address(), *creds, args);
    clients->stubs_[org.id()] = accord::v1::Holder::NewStub(channel);
  }
  return clients;
}

}  // namespace accord::gateway
