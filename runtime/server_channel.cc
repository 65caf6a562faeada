#include "runtime/server_channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace accord {

namespace server_channel_internal {

// A call started on a channel, until its status arrives: what a refusal
// needs to end it early. The context is valid while `state` is not
// kFinished; a canceller holds kCancelling while it calls TryCancel, and the
// call's own completion waits for that to end unless it runs inside that
// very TryCancel (on the canceller's thread).
struct PendingCall {
  enum State { kWaiting, kCancelling, kFinished };
  explicit PendingCall(grpc::ClientContext* context) : ctx(context) {}

  // Cancels the call unless it has finished, telling it `why`.
  void Cancel(const std::string& why) {
    {
      absl::MutexLock lock(&mu);
      if (refused.empty()) refused = why;
    }
    int expected = kWaiting;
    if (!state.compare_exchange_strong(expected, kCancelling)) return;
    // Before TryCancel: a completion it runs inline on this thread must see
    // that the canceller is itself.
    canceller.store(std::this_thread::get_id());
    ctx->TryCancel();
    canceller.store(std::thread::id());
    expected = kCancelling;
    state.compare_exchange_strong(expected, kWaiting);
  }

  // At the call's status: after this, nothing touches the context.
  void Finish() {
    while (true) {
      int s = state.load();
      if (s == kCancelling &&
          canceller.load() != std::this_thread::get_id()) {
        std::this_thread::yield();
        continue;
      }
      if (state.compare_exchange_weak(s, kFinished)) return;
    }
  }

  std::string Refused() {
    absl::MutexLock lock(&mu);
    return refused;
  }

  grpc::ClientContext* const ctx;
  std::atomic<int> state{kWaiting};
  std::atomic<std::thread::id> canceller{};
  absl::Mutex mu;
  std::string refused ABSL_GUARDED_BY(mu);
};

// The verdicts of one channel's handshakes: the refusal in force, the
// certificates its connections were accepted with (with the CRL generation
// each was checked against), and the calls in flight. Shared by the
// channel's certificate check (a handshake thread), its interceptors (call
// threads) and the ServerChannel; it may outlive the ServerChannel while
// calls drain, so it holds copies of what it needs. Thread-safe.
class Handshakes : public std::enable_shared_from_this<Handshakes> {
 public:
  Handshakes(std::string server_name, std::string expected_identity,
             std::string log_prefix)
      : server_name_(std::move(server_name)),
        expected_identity_(std::move(expected_identity)),
        log_prefix_(std::move(log_prefix)) {}

  // From the certificate check, once per handshake verdict.
  void Record(const ServerVerdict& v) {
    using Outcome = ServerVerdict::Outcome;
    std::string message;
    switch (v.outcome) {
      case Outcome::kAccepted: {
        absl::MutexLock lock(&mu_);
        refusal_.reset();
        logged_.clear();
        // A server presents one or two certificates over a channel's life
        // (rotation); more means churn, and the oldest need no re-check.
        if (accepted_.size() >= kMaxAccepted) accepted_.clear();
        if (!v.leaf_pem.empty()) accepted_[v.leaf_pem] = v.crl_generation;
        return;
      }
      case Outcome::kWrongIdentity:
        message = absl::StrCat(
            server_name_,
            " presented the wrong certificate identity: expected ",
            expected_identity_, ", presented ",
            v.presented_identity.empty() ? "none" : v.presented_identity);
        break;
      case Outcome::kRevoked:
        message =
            absl::StrCat(server_name_, " presented a revoked certificate");
        break;
      case Outcome::kCrlLapsed:
        message = absl::StrCat(server_name_,
                               " cannot be checked: the partnership CRL has "
                               "lapsed");
        break;
      case Outcome::kUnreadable:
        message = absl::StrCat(server_name_,
                               " presented a certificate that cannot be read");
        break;
    }
    Refuse(message, v.detail);
    EndWaitingCalls(std::move(message));
  }

  // Stands a refusal until the next accepted handshake. Logs `detail` when
  // it differs from the refusal logged last.
  void Refuse(std::string message, const std::string& detail) {
    std::string line;
    {
      absl::MutexLock lock(&mu_);
      if (!log_prefix_.empty() && detail != logged_) {
        line = absl::StrCat(log_prefix_, ": refused ", server_name_, " (",
                            expected_identity_, "): ", detail);
        logged_ = detail;
      }
      refusal_ = std::move(message);
    }
    if (!line.empty()) std::fprintf(stderr, "%s\n", line.c_str());
  }

  std::optional<std::string> Refusal() const {
    absl::MutexLock lock(&mu_);
    return refusal_;
  }

  // Checks again, under the CRL now in force, every certificate accepted
  // under an older one. The detail of the first one now refused, if any.
  std::optional<std::string> Recheck(const RevocationList& crl) {
    absl::MutexLock lock(&mu_);
    for (auto& [pem, generation] : accepted_) {
      uint64_t now_generation = 0;
      const absl::Status s = crl.Check(pem, &now_generation);
      if (!s.ok()) {
        return absl::StrCat(
            "a certificate this channel's connection was accepted with is "
            "now refused: ",
            s.message());
      }
      generation = now_generation;
    }
    return std::nullopt;
  }

  void Add(const std::shared_ptr<PendingCall>& call) {
    absl::MutexLock lock(&mu_);
    pending_.insert(call);
  }
  void Remove(const std::shared_ptr<PendingCall>& call) {
    absl::MutexLock lock(&mu_);
    pending_.erase(call);
  }

 private:
  static constexpr size_t kMaxAccepted = 8;

  // Calls waiting when a handshake is refused (those that asked to wait for
  // the server would otherwise wait until their deadline) end with the
  // refusal. Cancelled on a thread of their own: this runs inside gRPC's
  // handshake, where cancelling calls of the same channel is not safe.
  void EndWaitingCalls(std::string message) {
    std::vector<std::shared_ptr<PendingCall>> calls;
    {
      absl::MutexLock lock(&mu_);
      calls.assign(pending_.begin(), pending_.end());
    }
    if (calls.empty()) return;
    std::thread([self = shared_from_this(), calls = std::move(calls),
                 message = std::move(message)] {
      // One canceller at a time (PendingCall's protocol relies on it).
      absl::MutexLock lock(&self->cancel_mu_);
      for (const auto& call : calls) call->Cancel(message);
    }).detach();
  }

  const std::string server_name_;
  const std::string expected_identity_;
  const std::string log_prefix_;
  mutable absl::Mutex mu_;
  std::optional<std::string> refusal_ ABSL_GUARDED_BY(mu_);
  std::string logged_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> accepted_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::shared_ptr<PendingCall>> pending_
      ABSL_GUARDED_BY(mu_);
  absl::Mutex cancel_mu_;
};

namespace {

using grpc::experimental::InterceptionHookPoints;

// Fails a call at once while the channel's latest handshake stands refused
// (before anything of it is sent), ends it when a refusal comes while it
// waits, and gives failed calls the refusal's words instead of gRPC's
// transport text. One per call.
class RefusalInterceptor final : public grpc::experimental::Interceptor {
 public:
  RefusalInterceptor(grpc::experimental::ClientRpcInfo* info,
                     std::shared_ptr<Handshakes> handshakes)
      : info_(info),
        handshakes_(std::move(handshakes)),
        call_(std::make_shared<PendingCall>(info->client_context())) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      handshakes_->Add(call_);
      if (auto refusal = handshakes_->Refusal()) {
        // The channel keeps trying to connect, so a server back with a good
        // certificate is found.
        info_->channel()->GetState(/*try_to_connect=*/true);
        call_->Cancel(*refusal);
      }
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_STATUS)) {
      call_->Finish();
      handshakes_->Remove(call_);
      grpc::Status* status = methods->GetRecvStatus();
      if (status != nullptr && !status->ok()) {
        std::string refused = call_->Refused();
        if (refused.empty() && IsTransportFailure(status->error_code())) {
          refused = handshakes_->Refusal().value_or("");
        }
        if (!refused.empty()) {
          *status = grpc::Status(grpc::StatusCode::UNAVAILABLE, refused);
        }
      }
    }
    methods->Proceed();
  }

 private:
  static bool IsTransportFailure(grpc::StatusCode code) {
    return code == grpc::StatusCode::UNAVAILABLE ||
           code == grpc::StatusCode::DEADLINE_EXCEEDED ||
           code == grpc::StatusCode::UNKNOWN;
  }

  grpc::experimental::ClientRpcInfo* const info_;
  const std::shared_ptr<Handshakes> handshakes_;
  const std::shared_ptr<PendingCall> call_;
};

class RefusalInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit RefusalInterceptorFactory(std::shared_ptr<Handshakes> handshakes)
      : handshakes_(std::move(handshakes)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new RefusalInterceptor(info, handshakes_);
  }

 private:
  const std::shared_ptr<Handshakes> handshakes_;
};

}  // namespace
}  // namespace server_channel_internal

namespace {

constexpr absl::Duration kRelogInterval = absl::Minutes(1);
constexpr size_t kMaxLoggedFailures = 256;

}  // namespace

ServerChannel::ServerChannel(ServerChannelOptions options)
    : options_(std::move(options)) {}

ServerChannel::~ServerChannel() = default;

absl::StatusOr<std::unique_ptr<ServerChannel>> ServerChannel::Open(
    ServerChannelOptions options) {
  std::unique_ptr<ServerChannel> channel(new ServerChannel(std::move(options)));
  absl::MutexLock lock(&channel->mu_);
  if (auto s = channel->Build(/*connect_now=*/false); !s.ok()) return s;
  return channel;
}

absl::Status ServerChannel::Build(bool connect_now) {
  auto handshakes = std::make_shared<Handshakes>(
      options_.server_name, options_.expected_identity, options_.log_prefix);
  auto creds = MakeChannelCredentials(
      options_.tls, options_.expected_identity, options_.revocation,
      [handshakes](const ServerVerdict& v) { handshakes->Record(v); });
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args = options_.args;
  // This channel's connections are its own: a replacement channel must make
  // a new connection (and handshake), not share the old one through gRPC's
  // process-wide subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<server_channel_internal::RefusalInterceptorFactory>(
          handshakes));
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      options_.address, *creds, args, std::move(interceptors));
  if (channel == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot open a channel to ", options_.address));
  }
  // A replacement judges the server's certificate now rather than at the
  // first call. The first channel connects at its first call, as gRPC's
  // channels do: a server that starts after its caller is then reached at
  // once, not after a reconnect back-off.
  if (connect_now) channel->GetState(/*try_to_connect=*/true);
  channel_ = std::move(channel);
  handshakes_ = std::move(handshakes);
  if (options_.revocation != nullptr)
    checked_generation_ = options_.revocation->generation();
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> ServerChannel::Get() {
  const RevocationList* crl = options_.revocation;
  if (crl == nullptr) {
    absl::ReaderMutexLock lock(&mu_);
    return channel_;
  }
  const uint64_t generation = crl->generation();
  const bool lapsed = crl->lapsed();
  {
    absl::ReaderMutexLock lock(&mu_);
    if (generation == checked_generation_ && !lapsed) return channel_;
  }
  absl::MutexLock lock(&mu_);
  if (generation == checked_generation_ && !lapsed) return channel_;
  const std::optional<std::string> refused = handshakes_->Recheck(*crl);
  checked_generation_ = generation;
  if (!refused.has_value()) return channel_;
  // No new call may start on a connection to a server now refused, whether
  // or not a replacement can be built.
  handshakes_->Refuse(
      absl::StrCat(options_.server_name,
                   crl->lapsed() ? " cannot be checked: the partnership CRL "
                                   "has lapsed"
                                 : " presented a certificate that is now "
                                   "revoked"),
      *refused);
  if (auto s = Build(/*connect_now=*/true); !s.ok()) {
    checked_generation_ = 0;  // try again at the next call
    Log(absl::StrCat(options_.log_prefix, ": cannot open a new channel to ",
                     options_.server_name, ": ", s.message()));
  }
  return channel_;
}

std::optional<std::string> ServerChannel::Refusal() const {
  absl::ReaderMutexLock lock(&mu_);
  return handshakes_->Refusal();
}

grpc::Status ServerChannel::ForCaller(const grpc::Status& raw) {
  if (raw.ok() || absl::StartsWith(raw.error_message(), options_.server_name))
    return raw;
  std::string safe;
  switch (raw.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      safe = absl::StrCat(options_.server_name, " is unreachable");
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      safe = absl::StrCat(options_.server_name, " did not answer in time");
      break;
    default:
      return raw;
  }
  if (!options_.log_prefix.empty()) {
    const std::string key =
        absl::StrCat(static_cast<int>(raw.error_code()), raw.error_message());
    const absl::Time now = absl::Now();
    bool log = false;
    {
      absl::MutexLock lock(&log_mu_);
      if (logged_.size() >= kMaxLoggedFailures) logged_.clear();
      auto [it, inserted] = logged_.try_emplace(key, now);
      if (inserted || now - it->second >= kRelogInterval) {
        it->second = now;
        log = true;
      }
    }
    if (log) {
      Log(absl::StrCat(options_.log_prefix, ": ", safe, " (gRPC status ",
                       static_cast<int>(raw.error_code()), ": ",
                       raw.error_message(), ")"));
    }
  }
  return grpc::Status(raw.error_code(), safe);
}

void ServerChannel::Log(const std::string& line) {
  if (options_.log_prefix.empty()) return;
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace accord
