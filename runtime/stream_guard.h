// Guards a gRPC server against clients that churn HTTP/2 streams or grow its
// memory, and tells a cancelled call from an unparseable one.
//
// gRPC 1.51 (Debian 12) bounds the streams a connection has open
// (SETTINGS_MAX_CONCURRENT_STREAMS), but a stream the client has reset no
// longer counts as open while the call it started is still being set up,
// answered and torn down: a client that opens and resets streams in a loop
// (HTTP/2 rapid reset, CVE-2023-44487) makes the server create calls without
// bound, and while its sockets stay full gRPC's threads parse and create
// calls before they run any application callback. gRPC's own fixes came
// with 1.59-1.60, not in Debian's 1.51, and 1.51 gives the application no
// handle on a connection. So the guard watches each connection of its
// server from a thread of its own, through gRPC's channelz counters (streams
// started by the client, ended with an answer, ended without one), which
// the transport keeps as it parses:
//   - a stream that ended without an answer (the client reset it, or the
//     server refused it), or whose request gRPC could not parse, is a
//     reset; each connection has an allowance of resets, a token bucket of
//     `reset_burst` and `resets_per_second`;
//   - a connection holding more calls than `max_calls_per_connection`
//     (started and not yet ended: only streams reset while their call lives
//     get past max_concurrent_streams) is over its limit;
//   - so is one that sends many more bytes than its streams and messages
//     carry (a flood of SETTINGS, PING or other control frames), by the
//     kernel's count of bytes received on its socket;
//   - an identity holding more than `max_connections_per_identity`
//     connections has the newest over the limit closed;
//   - when the process's anonymous resident memory grows more than
//     `memory_high_water_bytes` beyond what it was when Watch was called
//     (memory-mapped files, such as an agent's store, do not count), the
//     connection holding the most calls (if they are many) is over its
//     limit too;
//   - a connection over a limit is closed at once: the guard disconnects its
//     socket, which drops what the client sent and gRPC has not read yet
//     and ends the transport and every call on it;
//   - the first closure of an identity is reported at once; further
//     closures and the resets counted are summarised per identity at most
//     once per `report_interval`. Nothing is reported per stream.
// Memory freed after an attack goes back to the system (malloc_trim, after
// the guard closes a connection and after any connection has ended).
//
// The interceptor answers a request gRPC could not parse with
// INVALID_ARGUMENT naming the expected message type, where gRPC 1.51's
// callback API answers UNIMPLEMENTED with an empty message.
//
// Thread-safe. The callbacks run on the guard's thread, never under its
// lock, and must not block.
#ifndef ACCORD_RUNTIME_STREAM_GUARD_H_
#define ACCORD_RUNTIME_STREAM_GUARD_H_

#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "runtime/clock.h"
#include "runtime/server_connections.h"

namespace accord {

// What had become of a unary or server-streaming call's request when gRPC
// handed the call over.
enum class RequestArrival {
  kReceived,     // parsed into the method's request message
  kCancelled,    // none: the client reset the stream or the connection ended
  kUnparseable,  // bytes that are not the method's request message (or the
                 // client ended the stream without sending one)
};

// Valid at POST_RECV_MESSAGE of the first message of a UNARY or
// SERVER_STREAMING call (the request gRPC reads before any handler runs).
RequestArrival ClassifyRequest(grpc::experimental::ServerRpcInfo* info,
                               grpc::experimental::InterceptorBatchMethods* m);

// "the request is not a valid accord.v1.QueryRequest message" for
// "/accord.v1.Gateway/Query" (the input type found in the generated
// descriptor pool; a generic wording for a method it does not know).
std::string UnparseableRequestMessage(absl::string_view method);

// A connection the guard closed.
struct ConnectionClosure {
  std::string identity;  // the client certificate's URI SANs
  std::string peer;      // gRPC's peer address, e.g. "ipv4:127.0.0.1:41236"
  std::string reason;    // e.g. "220 streams reset by the client in 0.04 s"
  // Lower-case hex SHA-256 of the certificate (DER), which tells apart
  // certificates naming the same identity (a revoked one, say).
  std::string certificate_sha256;
};

// What the guard saw of one identity over `period`.
struct StreamChurnSummary {
  std::string identity;
  uint64_t resets = 0;    // streams that ended without an answer
  uint64_t closures = 0;  // connections closed, the one reported at once
                          // included
  absl::Duration period;
};

// One line each for process logs, e.g. "closed the connection of
// spiffe://p/org/x from ipv4:127.0.0.1:41236: 201 streams reset ..." and
// "spiffe://p/org/x: 5230 streams reset by the client, 12 connections closed
// in 10.0 s".
std::string DescribeClosure(const ConnectionClosure& closure);
std::string DescribeSummary(const StreamChurnSummary& summary);

struct StreamGuardOptions {
  double reset_burst = 200;
  double resets_per_second = 50;
  int64_t max_calls_per_connection = 200;
  int max_connections_per_identity = 64;
  // Bytes a connection may send beyond what its streams and messages
  // carry (HTTP/2 control frames: SETTINGS, PING, WINDOW_UPDATE, PRIORITY,
  // empty frames), a token bucket: `byte_burst` at once, refilled with
  // `bytes_per_second` and `bytes_per_stream` for each stream it starts and
  // each message it sends. The burst takes two messages at gRPC's 4 MiB
  // limit; Accord's requests are far smaller.
  double byte_burst = 8 << 20;
  double bytes_per_second = 1 << 20;
  double bytes_per_stream = 64 << 10;
  // 0: no memory watch. Over it, the connection holding the most calls is
  // closed when it holds at least `shed_min_calls` (more than a client
  // using its streams normally), at most one every `shed_interval`.
  uint64_t memory_high_water_bytes = 0;
  int64_t shed_min_calls = 50;
  absl::Duration shed_interval = absl::Milliseconds(100);
  // How often every connection's counters are read, and the process's
  // memory.
  absl::Duration scan_interval = absl::Milliseconds(50);
  absl::Duration memory_interval = absl::Milliseconds(20);
  absl::Duration report_interval = absl::Seconds(10);
  std::function<void(const ConnectionClosure&)> on_closure;
  std::function<void(const StreamChurnSummary&)> on_summary;
};

class StreamGuard {
 public:
  // `clock` must outlive the guard.
  StreamGuard(StreamGuardOptions options, const Clock* clock);
  // Stops the guard's thread, reporting what is left. Shut the server down
  // first.
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

  // The interceptor every call of the server must pass through; register it
  // first (ServerBuilder::experimental().SetInterceptorCreators).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  InterceptorFactory();

  // Starts watching the server listening on `port`, whose channelz id is
  // `server_id` (0: found by its port when it has one of its own).
  void Watch(int port, int64_t server_id);

  // From now on nothing is counted or closed (the server is shutting down
  // and cancels its calls); what was counted before is still reported.
  void Stop() { stopped_.store(true); }

  // Reads every connection's counters and acts on them now (the guard's
  // thread does it every scan_interval), then reports the summaries due.
  void ScanNow() { Scan(/*memory_pressure=*/false); }
  void Report();

  // Connections closed so far.
  uint64_t closures() const { return closures_.load(); }

 private:
  class Interceptor;
  class Factory;

  struct Connection {
    std::string peer;
    std::string identity;
    std::string certificate_sha256;
    double tokens = 0;
    absl::Time refilled;
    absl::Time first_seen;
    int64_t failed = 0;    // streams_failed last seen
    int64_t refused = 0;   // requests refused unparsed
    int64_t started = 0;   // streams_started last seen
    int64_t messages = 0;  // messages_received last seen
    uint64_t bytes = 0;    // bytes received last seen
    double byte_tokens = 0;
    bool closed = false;
  };

  struct Identity {
    uint64_t resets = 0;
    uint64_t closures = 0;
    bool closure_reported = false;  // since the last summary
    absl::Time since;
  };

  struct Closing {
    std::string peer;
    std::unique_ptr<ConnectionClosure> report;
  };

  void Run();
  void Scan(bool memory_pressure);
  // A request from `peer` (gRPC's peer string) that gRPC could not parse:
  // counts against its connection's allowance like a reset.
  void CountUnparseable(const std::string& peer);
  Closing CloseLocked(Connection* c, std::string reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Identity& IdentityLocked(const std::string& identity)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StreamGuardOptions options_;
  const Clock* const clock_;
  std::atomic<int> port_{0};
  // Anonymous resident memory when Watch was called: the high water is
  // measured above it.
  std::atomic<uint64_t> memory_floor_{0};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> closures_{0};
  absl::Mutex scan_mu_;  // one Scan at a time
  absl::Mutex mu_;
  int64_t server_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, Connection> connections_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Identity> identities_ ABSL_GUARDED_BY(mu_);
  // Requests refused unparsed since the last scan, by peer.
  absl::flat_hash_map<std::string, int64_t> unparseable_ ABSL_GUARDED_BY(mu_);
  bool trim_due_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_full_scan_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_shed_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Bytes a connection may send between two scans (50 ms) without the
  // guard reading the channelz counters at once rather than within the
  // second: about 25 reset streams.
  static constexpr uint64_t kQuietBytes = 1 << 10;
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_STREAM_GUARD_H_
