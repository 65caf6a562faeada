#include "tests/fake_server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "runtime/tls.h"

namespace accord::testing {

class CountingServer::Service final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override {
    {
      absl::MutexLock lock(&mu_);
      methods_.push_back(ctx->method());
    }
    class Refuse final : public grpc::ServerGenericBidiReactor {
     public:
      Refuse() {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            kFakeServerAnswer));
      }
      void OnDone() override { delete this; }
    };
    return new Refuse;
  }

  std::vector<std::string> methods() const {
    absl::MutexLock lock(&mu_);
    return methods_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> methods_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<CountingServer>> CountingServer::Start(
    const std::string& address, const accord::v1::TlsFiles& tls) {
  auto creds = MakeServerCredentials(tls);
  if (!creds.ok()) return creds.status();
  std::unique_ptr<CountingServer> server(new CountingServer);
  server->service_ = std::make_unique<Service>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, *creds, &server->port_);
  builder.RegisterCallbackGenericService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  return server;
}

CountingServer::~CountingServer() { Stop(); }

int CountingServer::calls() const {
  return static_cast<int>(service_->methods().size());
}

std::vector<std::string> CountingServer::methods() const {
  return service_->methods();
}

void CountingServer::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
}

}  // namespace accord::testing
