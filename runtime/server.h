// Starting and stopping Accord's gRPC servers, shared by the gateway and the
// agent: mutual-TLS listening port, limits (4 MiB messages, 100 concurrent
// streams and 16 KiB of metadata per connection, 10 s to complete the TLS
// handshake), and shutdown on SIGINT or
// SIGTERM. Call BlockShutdownSignals() first thing in main(), before any
// thread starts, so that only WaitForShutdownSignal() sees them.
#ifndef ACCORD_RUNTIME_SERVER_H_
#define ACCORD_RUNTIME_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace accord {

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (useful with ":0")
};

// `interceptors` see every call before its handler (e.g. to audit requests
// gRPC could not parse).
absl::StatusOr<StartedServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> creds,
    const std::vector<grpc::Service*>& services,
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors = {});

void BlockShutdownSignals();
// Blocks until SIGINT or SIGTERM; returns the signal number.
int WaitForShutdownSignal();

// Prints "<program>: <message>" to stderr and returns exit status 1, for
// start-up failures (config errors name file:line and field).
int StartupFailure(const char* program, const absl::Status& status);

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERVER_H_
