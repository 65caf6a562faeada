// Channels from Accord to Accord's own servers: the gateway to each agent's
// holder API, an agent to the gateway, accordctl to either.
//
// At every TLS handshake the server's certificate must chain to the
// partnership CA (gRPC checks it against the CA bundle), carry exactly the
// expected identity (e.g. spiffe://<p>/agent/<org>) and not be revoked by the
// partnership CRL (runtime/tls.h). A refusal fails the handshake, so nothing
// of a call reaches a refused server, and is remembered: while the latest
// handshake stands refused, every new call fails at once with UNAVAILABLE
// and a reason safe to show whoever made the call ("the holder's agent
// presented a revoked certificate"; "the gateway presented the wrong
// certificate identity: expected ..., presented ..."). Calls that asked to
// wait for the server (wait_for_ready) and are waiting when a handshake is
// refused end then too, rather than at their deadline. The raw detail goes to
// the process log, once per change. Reconnection goes on in the background,
// so a server that comes back with a good certificate is used again.
//
// A CRL reload applies to open connections too: Get() checks the
// certificates this channel's connections were accepted with against each
// new list (and the lapse of the one in force); when one is now refused, the
// channel is replaced by a new one, whose connection makes a new handshake.
// Calls already in flight finish on the old channel; no new call starts on
// it.
//
// Thread-safe.
#ifndef ACCORD_RUNTIME_SERVER_CHANNEL_H_
#define ACCORD_RUNTIME_SERVER_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"
#include "runtime/revocation.h"
#include "runtime/tls.h"

namespace accord {

namespace server_channel_internal {
class Handshakes;
}  // namespace server_channel_internal

struct ServerChannelOptions {
  std::string address;  // host:port
  // This process's certificate, key and CA bundle (paths resolved).
  accord::v1::TlsFiles tls;
  // The one URI SAN the server's certificate must carry.
  std::string expected_identity;
  // The server as callers are told of it: "the holder's agent", "the
  // gateway". Messages for callers start with it.
  std::string server_name = "the server";
  // The partnership CRL; must outlive the channel. Null only when the
  // configuration allows running without a CRL (allow_no_crl).
  const RevocationList* revocation = nullptr;
  grpc::ChannelArguments args = DefaultChannelArguments();
  // Process log lines (stderr) start with this, e.g.
  // "accord-gateway: holder refuge"; empty: nothing is logged.
  std::string log_prefix;
};

class ServerChannel {
 public:
  // Fails when the TLS files cannot be used (runtime/tls.h). Starts
  // connecting at once, so the server's certificate is judged before the
  // first call.
  static absl::StatusOr<std::unique_ptr<ServerChannel>> Open(
      ServerChannelOptions options);
  ~ServerChannel();
  ServerChannel(const ServerChannel&) = delete;
  ServerChannel& operator=(const ServerChannel&) = delete;

  // The channel to start a new call on: the current one, or, when a CRL
  // reload or lapse refuses a certificate it was accepted with, a new one.
  std::shared_ptr<grpc::Channel> Get();

  // Why the latest handshake refused the server, in words safe to show a
  // caller; nullopt when it was accepted or none has finished yet.
  std::optional<std::string> Refusal() const;

  // A failed call's status in words safe for whoever made the call (for the
  // gateway, the requester): kept when it already starts with server_name
  // (a refusal, above) or is not a transport failure; UNAVAILABLE becomes
  // "<server> is unreachable", DEADLINE_EXCEEDED "<server> did not answer in
  // time". The raw status goes to the process log (each distinct one at most
  // once a minute).
  grpc::Status ForCaller(const grpc::Status& raw);

  const std::string& server_name() const { return options_.server_name; }

 private:
  using Handshakes = server_channel_internal::Handshakes;
  explicit ServerChannel(ServerChannelOptions options);
  // A new channel with its own connection and verdicts.
  absl::Status Build(bool connect_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(const std::string& line);

  const ServerChannelOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Handshakes> handshakes_ ABSL_GUARDED_BY(mu_);
  // The CRL generation the accepted certificates were last checked against.
  uint64_t checked_generation_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex log_mu_;
  // When each distinct failure was last logged (ForCaller).
  absl::flat_hash_map<std::string, absl::Time> logged_ ABSL_GUARDED_BY(log_mu_);
};

// A typed stub (e.g. accord::v1::Holder::Stub) on a ServerChannel's current
// channel, rebuilt when the channel is. Thread-safe.
template <typename Service>
class ServerStub {
 public:
  explicit ServerStub(std::unique_ptr<ServerChannel> channel)
      : channel_(std::move(channel)) {}

  // The stub to start a new call with; holding it keeps it valid.
  std::shared_ptr<typename Service::Stub> Get() {
    std::shared_ptr<grpc::Channel> current = channel_->Get();
    absl::MutexLock lock(&mu_);
    if (current != stub_channel_) {
      stub_ = std::make_shared<typename Service::Stub>(current);
      stub_channel_ = std::move(current);
    }
    return stub_;
  }
  ServerChannel& channel() { return *channel_; }

 private:
  const std::unique_ptr<ServerChannel> channel_;
  absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> stub_channel_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<typename Service::Stub> stub_ ABSL_GUARDED_BY(mu_);
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERVER_CHANNEL_H_
