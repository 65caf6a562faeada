// Starting and stopping Accord's gRPC servers, shared by the gateway and the
// agent: mutual-TLS listening port, the bounds of ServerLimits (memory,
// streams per connection, connection idle time and age) and the fixed ones
// (4 MiB messages, 16 KiB of metadata, 10 s to complete the TLS handshake,
// no more than one ping every 10 s without data), a StreamGuard in front of
// every call (ends connections that churn streams, names the message type a
// request failed to parse as), and shutdown on SIGINT or SIGTERM. Call
// BlockShutdownSignals() first thing in main(), before any thread starts,
// so that only WaitForShutdownSignal() sees them.
#ifndef ACCORD_RUNTIME_SERVER_H_
#define ACCORD_RUNTIME_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "runtime/clock.h"
#include "runtime/server_limits.h"
#include "runtime/stream_guard.h"

namespace accord {

// The gRPC resource quota that bounds the memory of a process's servers:
// make one and give it to each of them (ServerOptions::memory).
std::shared_ptr<grpc::ResourceQuota> MakeMemoryQuota(const ServerLimits& limits,
                                                     const std::string& name);

struct ServerOptions {
  ServerLimits limits;
  // Shared by the process's servers; one of its own when null.
  std::shared_ptr<grpc::ResourceQuota> memory;
  // Where the stream guard reports closed connections and its summaries
  // (runtime/stream_guard.h); either may be empty.
  std::function<void(const ConnectionClosure&)> on_closure;
  std::function<void(const StreamChurnSummary&)> on_summary;
  absl::Duration report_interval = absl::Seconds(10);
  const Clock* clock = nullptr;  // the system clock when null
};

// Sets `options`' stream-guard reports to one line each on stderr,
// "<prefix>: <what>" (for processes that audit nothing, like the agents).
void LogStreamGuardReports(const std::string& prefix, ServerOptions* options);

struct StartedServer {
  std::unique_ptr<StreamGuard> guard;  // outlives the server (declared first)
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (useful with ":0")

  // Stops the guard counting (shutting down cancels calls), then shuts the
  // server down, cancelling what is still running at `deadline`.
  void Shutdown(std::chrono::system_clock::time_point deadline);
};

// `interceptors` see every call before its handler, after the stream guard
// (e.g. to audit requests gRPC could not parse).
absl::StatusOr<StartedServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> creds,
    const std::vector<grpc::Service*>& services,
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors = {},
    ServerOptions options = {});

void BlockShutdownSignals();
// Blocks until SIGINT or SIGTERM; returns the signal number.
int WaitForShutdownSignal();

// Prints "<program>: <message>" to stderr and returns exit status 1, for
// start-up failures (config errors name file:line and field).
int StartupFailure(const char* program, const absl::Status& status);

// The one command line both programs take, `--config FILE`. Anything else
// prints "usage: <program> --config <config_name>" and gives nullopt.
std::optional<std::string> ParseConfigFlag(int argc, char** argv,
                                           const char* program,
                                           const char* config_name);

// Something a running server re-reads when its file changes (agreements, the
// CRL): `reload` returns whether it changed; on failure what is in force
// stays and "<prefix>: <failure>: <error>" goes to stderr. When it changed
// and `reloaded` is given, "<prefix>: <reloaded()>" goes to stdout.
struct Reloadable {
  std::string failure;
  std::function<absl::StatusOr<bool>()> reload;
  std::function<std::string()> reloaded;
};

// Polls every item once per `interval` on one thread, from construction until
// Stop() (or destruction).
class Reloader {
 public:
  Reloader(std::string prefix, std::vector<Reloadable> items,
           absl::Duration interval = absl::Seconds(1));
  ~Reloader() { Stop(); }
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;
  void Stop();

 private:
  void Poll();

  const std::string prefix_;
  const std::vector<Reloadable> items_;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERVER_H_
