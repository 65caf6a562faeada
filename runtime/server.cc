#include "runtime/server.h"

#include <signal.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace accord {
namespace {

constexpr int kMaxMessageBytes = 4 * 1024 * 1024;

int Millis(absl::Duration d) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

}  // namespace

std::shared_ptr<grpc::ResourceQuota> MakeMemoryQuota(const ServerLimits& limits,
                                                     const std::string& name) {
  auto quota = std::make_shared<grpc::ResourceQuota>(name);
  quota->Resize(limits.max_memory_bytes);
  return quota;
}

absl::StatusOr<StartedServer> StartServer(
    const std::string& address, std::shared_ptr<grpc::ServerCredentials> creds,
    const std::vector<grpc::Service*>& services,
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors,
    ServerOptions options) {
  static const SystemClock system_clock;
  const ServerLimits& limits = options.limits;
  StartedServer out;
  StreamGuardOptions guard_options;
  guard_options.reset_burst = limits.stream_reset_burst;
  guard_options.resets_per_second = limits.stream_resets_per_second;
  guard_options.max_calls_per_connection = limits.max_calls_per_connection();
  guard_options.max_connections_per_identity =
      limits.max_connections_per_identity;
  guard_options.memory_high_water_bytes = limits.memory_high_water_bytes();
  guard_options.shed_min_calls = limits.max_concurrent_streams / 2;
  guard_options.report_interval = options.report_interval;
  guard_options.on_closure = std::move(options.on_closure);
  guard_options.on_summary = std::move(options.on_summary);
  out.guard = std::make_unique<StreamGuard>(
      std::move(guard_options),
      options.clock != nullptr ? options.clock : &system_clock);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, creds, &out.port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Memory: gRPC accounts its buffers against the quota and, as it fills,
  // shrinks read buffers and flow-control windows, refuses new connections,
  // sends GOAWAY to idle ones and ends streams.
  builder.SetResourceQuota(options.memory != nullptr
                               ? *options.memory
                               : *MakeMemoryQuota(limits, address));
  // Pings: at most one every 10 s without data; the third too early ends
  // the connection with GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings").
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Bounds on what one hostile connection can hold: streams at once, header
  // bytes, time to finish the TLS handshake, time without calls and (when
  // configured) in all.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             limits.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             Millis(limits.max_connection_idle));
  if (limits.max_connection_age != absl::InfiniteDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               Millis(limits.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               Millis(limits.max_connection_age_grace));
  }
  // The stream guard reads each connection's stream counters from channelz.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 1);
  for (auto* s : services) builder.RegisterService(s);
  // The guard sees every call first.
  interceptors.insert(interceptors.begin(), out.guard->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  const std::vector<int64_t> servers_before = ChannelzServerIds();
  out.server = builder.BuildAndStart();
  if (!out.server || out.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address,
                                               " (address in use or invalid)"));
  }
  out.guard->Watch(out.port, NewChannelzServerId(servers_before));
  return out;
}

void LogStreamGuardReports(const std::string& prefix, ServerOptions* options) {
  options->on_closure = [prefix](const ConnectionClosure& c) {
    std::fprintf(stderr, "%s: %s\n", prefix.c_str(),
                 DescribeClosure(c).c_str());
  };
  options->on_summary = [prefix](const StreamChurnSummary& s) {
    std::fprintf(stderr, "%s: %s\n", prefix.c_str(),
                 DescribeSummary(s).c_str());
  };
}

void StartedServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (guard != nullptr) guard->Stop();
  if (server != nullptr) server->Shutdown(deadline);
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
