#include "runtime/stream_guard.h"

#include <google/protobuf/descriptor.h>
#include <grpc/grpc.h>
#include <grpcpp/server_context.h>
#include <malloc.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace accord {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

RequestArrival ClassifyRequest(ServerRpcInfo* info,
                               grpc::experimental::InterceptorBatchMethods* m) {
  if (m->GetRecvMessage() != nullptr) return RequestArrival::kReceived;
  // No message: either none came (the stream was reset, or the connection
  // lost, before it did) or what came did not parse. gRPC's transport tells
  // the two apart: the receive "failed" only when the stream ended without
  // the client closing it in order.
  grpc_call* call = info->server_context()->c_call();
  if (call != nullptr && grpc_call_failed_before_recv_message(call)) {
    return RequestArrival::kCancelled;
  }
  return RequestArrival::kUnparseable;
}

std::string UnparseableRequestMessage(absl::string_view method) {
  // "/accord.v1.Gateway/Query" -> service "accord.v1.Gateway", "Query".
  const size_t slash = method.rfind('/');
  if (!method.empty() && method[0] == '/' && slash != 0 &&
      slash != absl::string_view::npos) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            std::string(method.substr(1, slash - 1)));
    const auto* m =
        service == nullptr
            ? nullptr
            : service->FindMethodByName(std::string(method.substr(slash + 1)));
    if (m != nullptr) {
      return absl::StrCat("the request is not a valid ",
                          m->input_type()->full_name(), " message");
    }
  }
  return "the request is not a valid protobuf message of its type";
}

std::string DescribeClosure(const ConnectionClosure& closure) {
  return absl::StrCat(
      "closed the connection of ",
      closure.identity.empty() ? "an unknown identity" : closure.identity,
      " from ", closure.peer, ": ", closure.reason);
}

std::string DescribeSummary(const StreamChurnSummary& summary) {
  return absl::StrFormat(
      "%s: %d streams reset by the client, %d connections closed in %.1f s",
      summary.identity.empty() ? "an unknown identity" : summary.identity,
      summary.resets, summary.closures, absl::ToDoubleSeconds(summary.period));
}

// ---------------------------------------------------------------------------
// The interceptor

class StreamGuard::Interceptor final : public grpc::experimental::Interceptor {
 public:
  Interceptor(StreamGuard* guard, ServerRpcInfo* info)
      : guard_(guard), info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        !request_seen_ &&
        (info_->type() == ServerRpcInfo::Type::UNARY ||
         info_->type() == ServerRpcInfo::Type::SERVER_STREAMING)) {
      request_seen_ = true;
      if (ClassifyRequest(info_, m) == RequestArrival::kUnparseable) {
        unparseable_.store(true);
        guard_->CountUnparseable(info_->server_context()->peer());
      }
    }
    if (m->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS) &&
        unparseable_.load()) {
      // gRPC's callback handlers answer a request they could not
      // deserialise with UNIMPLEMENTED and no message; say what it is.
      const grpc::Status sent = m->GetSendStatus();
      if (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          sent.error_message().empty()) {
        m->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         UnparseableRequestMessage(info_->method())));
      }
    }
    m->Proceed();
  }

 private:
  StreamGuard* const guard_;
  ServerRpcInfo* const info_;
  bool request_seen_ = false;
  std::atomic<bool> unparseable_{false};
};

class StreamGuard::Factory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(StreamGuard* guard) : guard_(guard) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      ServerRpcInfo* info) override {
    return new Interceptor(guard_, info);
  }

 private:
  StreamGuard* const guard_;
};

// ---------------------------------------------------------------------------
// The guard

StreamGuard::StreamGuard(StreamGuardOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

StreamGuard::~StreamGuard() {
  stopping_.Notify();
  thread_.join();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
StreamGuard::InterceptorFactory() {
  return std::make_unique<Factory>(this);
}

void StreamGuard::CountUnparseable(const std::string& peer) {
  if (stopped_.load()) return;
  absl::MutexLock lock(&mu_);
  ++unparseable_[CanonicalPeer(peer)];
}

void StreamGuard::Watch(int port, int64_t server_id) {
  memory_floor_.store(AnonymousResidentBytes());
  {
    absl::MutexLock lock(&mu_);
    server_id_ = server_id;
  }
  port_.store(port);
}

void StreamGuard::Run() {
  absl::Time next_scan = absl::InfinitePast();
  absl::Time next_report = absl::Now() + options_.report_interval;
  absl::Time last_trim = absl::InfinitePast();
  while (!stopping_.WaitForNotificationWithTimeout(options_.memory_interval)) {
    const absl::Time now = absl::Now();
    bool pressure = false;
    const uint64_t high_water =
        memory_floor_.load() + options_.memory_high_water_bytes;
    if (options_.memory_high_water_bytes > 0 &&
        AnonymousResidentBytes() > high_water) {
      // Memory freed but kept by malloc counts in the resident size; give
      // it back first (at most once a second) and look again.
      if (now - last_trim > absl::Seconds(1)) {
        malloc_trim(0);
        last_trim = now;
      }
      pressure = AnonymousResidentBytes() > high_water;
    }
    if (pressure || now >= next_scan) {
      Scan(pressure);
      next_scan = now + options_.scan_interval;
    }
    bool trim = false;
    {
      absl::MutexLock lock(&mu_);
      trim = trim_due_ && now - last_trim > absl::Seconds(1);
      if (trim) trim_due_ = false;
    }
    if (trim) {
      // Connections were closed: give back what their calls held.
      malloc_trim(0);
      last_trim = now;
    }
    if (now >= next_report) {
      Report();
      next_report = now + options_.report_interval;
    }
  }
  Report();
}

StreamGuard::Identity& StreamGuard::IdentityLocked(
    const std::string& identity) {
  auto [it, inserted] = identities_.try_emplace(identity);
  if (inserted) it->second.since = clock_->Now();
  return it->second;
}

void StreamGuard::Scan(bool memory_pressure) {
  absl::MutexLock scan_lock(&scan_mu_);
  const int port = port_.load();
  if (port == 0 || stopped_.load()) return;
  int64_t server_id;
  {
    absl::MutexLock lock(&mu_);
    if (server_id_ == 0) server_id_ = ChannelzServerId(port);
    server_id = server_id_;
  }
  if (server_id == 0) return;
  // Bytes first (cheap: one system call per socket): while no connection
  // sends anything worth a look, the channelz counters are read only once
  // a second.
  const absl::flat_hash_map<std::string, uint64_t> bytes =
      BytesReceivedByPeer(port);
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    bool active = memory_pressure || now - last_full_scan_ >= absl::Seconds(1);
    absl::flat_hash_map<std::string, uint64_t> seen_bytes;
    for (const auto& [id, c] : connections_) {
      seen_bytes[CanonicalPeer(c.peer)] = c.bytes;
    }
    for (const auto& [peer, received] : bytes) {
      if (active) break;
      auto it = seen_bytes.find(peer);
      // A new connection, or one that sent more than a little since.
      active = it == seen_bytes.end() || received > it->second + kQuietBytes;
    }
    if (!active) return;
    last_full_scan_ = now;
  }
  const std::vector<TransportCounters> counters =
      ReadTransportCounters(server_id, [this](int64_t id) {
        absl::MutexLock lock(&mu_);
        return connections_.contains(id);
      });
  std::vector<Closing> closings;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_map<int64_t, Connection> seen;
    int64_t heaviest = 0;  // socket id
    int64_t heaviest_calls = 0;
    for (const TransportCounters& t : counters) {
      auto found = connections_.find(t.socket_id);
      Connection c;
      if (found != connections_.end()) {
        c = std::move(found->second);
      } else {
        // New since the last scan: everything it did counts (and its
        // certificate, read this once, names it).
        c.peer = t.peer;
        c.identity = t.identity;
        c.certificate_sha256 = t.certificate_sha256;
        c.tokens = options_.reset_burst;
        c.byte_tokens = options_.byte_burst;
        c.refilled = c.first_seen = now;
      }
      Connection& conn = seen[t.socket_id] = std::move(c);
      if (conn.closed) continue;
      const double elapsed = absl::ToDoubleSeconds(now - conn.refilled);
      conn.refilled = now;
      // Streams that ended without an answer, and requests refused unparsed.
      int64_t resets = std::max<int64_t>(t.streams_failed - conn.failed, 0);
      conn.failed = t.streams_failed;
      if (auto u = unparseable_.find(CanonicalPeer(conn.peer));
          u != unparseable_.end()) {
        resets += u->second;
        conn.refused += u->second;
      }
      if (resets > 0) {
        IdentityLocked(conn.identity).resets += static_cast<uint64_t>(resets);
      }
      conn.tokens =
          std::min(options_.reset_burst,
                   conn.tokens + elapsed * options_.resets_per_second) -
          static_cast<double>(resets);
      // Bytes beyond what the streams and messages carry.
      const int64_t carriers =
          std::max<int64_t>(t.streams_started - conn.started, 0) +
          std::max<int64_t>(t.messages_received - conn.messages, 0);
      conn.started = t.streams_started;
      conn.messages = t.messages_received;
      uint64_t received = conn.bytes;
      if (auto b = bytes.find(CanonicalPeer(conn.peer)); b != bytes.end()) {
        received = std::max(received, b->second);
      }
      const double new_bytes = static_cast<double>(received - conn.bytes);
      conn.bytes = received;
      conn.byte_tokens =
          std::min(
              options_.byte_burst,
              conn.byte_tokens + elapsed * options_.bytes_per_second +
                  static_cast<double>(carriers) * options_.bytes_per_stream) -
          new_bytes;
      const int64_t calls =
          t.streams_started - t.streams_succeeded - t.streams_failed;
      if (conn.tokens < 0) {
        closings.push_back(CloseLocked(
            &conn,
            absl::StrFormat("%d streams reset by the client (or refused "
                            "unparsed) in %.2f s (allowed: %.0f at once, %.0f "
                            "a second)",
                            conn.failed + conn.refused,
                            absl::ToDoubleSeconds(now - conn.first_seen),
                            options_.reset_burst, options_.resets_per_second)));
      } else if (conn.byte_tokens < 0) {
        closings.push_back(CloseLocked(
            &conn,
            absl::StrFormat(
                "%.1f MiB received in %.2f s over %d streams and %d messages "
                "(HTTP/2 control frames; allowed: %.0f MiB at once, %.0f MiB "
                "a second and %.0f KiB a stream or message)",
                static_cast<double>(conn.bytes) / (1 << 20),
                absl::ToDoubleSeconds(now - conn.first_seen), conn.started,
                conn.messages, options_.byte_burst / (1 << 20),
                options_.bytes_per_second / (1 << 20),
                options_.bytes_per_stream / 1024)));
      } else if (calls > options_.max_calls_per_connection) {
        closings.push_back(CloseLocked(
            &conn, absl::StrCat(calls, " calls at once, more than the ",
                                options_.max_calls_per_connection,
                                " a connection may hold (its client resets "
                                "streams the server is still answering)")));
      } else if (calls > heaviest_calls) {
        heaviest = t.socket_id;
        heaviest_calls = calls;
      }
    }
    // Per identity, the newest connections over the limit (channelz ids
    // grow with time).
    absl::flat_hash_map<std::string, std::vector<int64_t>> by_identity;
    for (const TransportCounters& t : counters) {
      const Connection& c = seen[t.socket_id];
      if (!c.closed) by_identity[c.identity].push_back(t.socket_id);
    }
    const size_t max_connections =
        static_cast<size_t>(options_.max_connections_per_identity);
    for (auto& entry : by_identity) {
      std::vector<int64_t>& ids = entry.second;
      if (ids.size() <= max_connections) continue;
      std::sort(ids.begin(), ids.end());
      for (size_t i = max_connections; i < ids.size(); ++i) {
        closings.push_back(CloseLocked(
            &seen[ids[i]],
            absl::StrCat(ids.size(), " connections at once, more than the ",
                         options_.max_connections_per_identity,
                         " one identity may hold")));
      }
    }
    if (memory_pressure && heaviest_calls >= options_.shed_min_calls &&
        now - last_shed_ >= options_.shed_interval && !seen[heaviest].closed) {
      last_shed_ = now;
      closings.push_back(
          CloseLocked(&seen[heaviest],
                      absl::StrCat("the server's memory grew more than ",
                                   options_.memory_high_water_bytes >> 20,
                                   " MiB beyond what it held at start and this "
                                   "connection held the most calls (",
                                   heaviest_calls, ")")));
    }
    // Connections no longer listed have ended (gRPC ended them, or their
    // clients did): give back what they held too.
    for (const auto& [id, c] : connections_) {
      if (!c.closed && !seen.contains(id)) trim_due_ = true;
    }
    connections_ = std::move(seen);
    unparseable_.clear();
  }
  for (Closing& closing : closings) {
    if (closing.peer.empty()) continue;
    DisconnectPeer(port, closing.peer);
    closures_.fetch_add(1);
    if (closing.report != nullptr && options_.on_closure) {
      options_.on_closure(*closing.report);
    }
  }
}

StreamGuard::Closing StreamGuard::CloseLocked(Connection* c,
                                              std::string reason) {
  Closing closing;
  c->closed = true;
  closing.peer = c->peer;
  trim_due_ = true;
  Identity& id = IdentityLocked(c->identity);
  ++id.closures;
  if (!id.closure_reported) {
    id.closure_reported = true;
    closing.report = std::make_unique<ConnectionClosure>(ConnectionClosure{
        c->identity, c->peer, std::move(reason), c->certificate_sha256});
  }
  return closing;
}

void StreamGuard::Report() {
  const absl::Time now = clock_->Now();
  std::vector<StreamChurnSummary> due;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [identity, id] : identities_) {
      if (id.resets > 0 || id.closures > 0) {
        due.push_back(StreamChurnSummary{identity, id.resets, id.closures,
                                         now - id.since});
      }
    }
    identities_.clear();
  }
  if (!options_.on_summary) return;
  for (const auto& s : due) options_.on_summary(s);
}

}  // namespace accord
