#include "runtime/server.h"

#include <signal.h>

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace accord {
namespace {
constexpr int kMaxMessageBytes = 4 * 1024 * 1024;
}

absl::StatusOr<StartedServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> creds,
    const std::vector<grpc::Service*>& services,
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors) {
  grpc::ServerBuilder builder;
  StartedServer out;
  builder.AddListeningPort(address, creds, &out.port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // Bounds on what one hostile connection can hold: streams at once, header
  // bytes, and time to finish the TLS handshake.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10000);
  for (auto* s : services) builder.RegisterService(s);
  if (!interceptors.empty()) {
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  out.server = builder.BuildAndStart();
  if (!out.server || out.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address,
                                               " (address in use or invalid)"));
  }
  return out;
}

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int StartupFailure(const char* program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", program,
               std::string(status.message()).c_str());
  return 1;
}

std::optional<std::string> ParseConfigFlag(int argc, char** argv,
                                           const char* program,
                                           const char* config_name) {
  std::optional<std::string> config;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else {
      config.reset();
      break;
    }
  }
  if (!config.has_value() || config->empty()) {
    std::fprintf(stderr, "usage: %s --config %s\n", program, config_name);
    return std::nullopt;
  }
  return config;
}

Reloader::Reloader(std::string prefix, std::vector<Reloadable> items,
                   absl::Duration interval)
    : prefix_(std::move(prefix)), items_(std::move(items)) {
  thread_ = std::thread([this, interval] {
    while (!stopping_.WaitForNotificationWithTimeout(interval)) Poll();
  });
}

void Reloader::Stop() {
  if (!thread_.joinable()) return;
  stopping_.Notify();
  thread_.join();
}

void Reloader::Poll() {
  for (const Reloadable& item : items_) {
    auto changed = item.reload();
    if (!changed.ok()) {
      std::fprintf(stderr, "%s: %s: %s\n", prefix_.c_str(),
                   item.failure.c_str(),
                   std::string(changed.status().message()).c_str());
    } else if (*changed && item.reloaded) {
      std::printf("%s: %s\n", prefix_.c_str(), item.reloaded().c_str());
      std::fflush(stdout);
    }
  }
}

}  // namespace accord
