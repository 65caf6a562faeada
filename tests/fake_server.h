// A fake peer for tests: a real gRPC server over mutual TLS, presenting the
// certificate it is given (e.g. a revoked one), that answers every call of
// any service and method with UNIMPLEMENTED "reached the fake server" and
// counts them. Tests use it where Accord must send nothing: a revoked agent,
// a gateway with the wrong identity.
//
// Thread-safe.
#ifndef ACCORD_TESTS_FAKE_SERVER_H_
#define ACCORD_TESTS_FAKE_SERVER_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/config.pb.h"

namespace accord::testing {

inline constexpr char kFakeServerAnswer[] = "reached the fake server";

class CountingServer {
 public:
  // Listens on `address` (host:port; port 0 picks one) with the certificate,
  // key and CA bundle of `tls`, requiring client certificates like every
  // Accord server.
  static absl::StatusOr<std::unique_ptr<CountingServer>> Start(
      const std::string& address, const accord::v1::TlsFiles& tls);
  ~CountingServer();

  // Calls received so far, and their methods ("/accord.v1.Holder/Disclose").
  int calls() const;
  std::vector<std::string> methods() const;
  int port() const { return port_; }
  // Stops listening (idempotent), so that a real server can take the port.
  void Stop();

 private:
  class Service;
  CountingServer() = default;

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace accord::testing

#endif  // ACCORD_TESTS_FAKE_SERVER_H_
