// What a client may make one of Accord's gRPC servers hold: memory, streams
// per connection, stream resets, connection lifetime. Read once from the
// `server_limits` block of the gateway's or agent's configuration (every
// field has a default) and immutable after. docs/SECURITY.md ("HTTP/2
// abuse") says what each limit defends against. Plain value; thread-safe
// once built.
#ifndef ACCORD_RUNTIME_SERVER_LIMITS_H_
#define ACCORD_RUNTIME_SERVER_LIMITS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"

namespace accord {

struct ServerLimits {
  // Memory the process's gRPC servers may use (one resource quota shared by
  // them all).
  uint64_t max_memory_bytes = uint64_t{512} << 20;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
  int max_concurrent_streams = 100;
  // Streams one connection may reset before they are answered: a burst, and
  // sustained per second (a token bucket). Over it, the connection is closed.
  double stream_reset_burst = 200;
  double stream_resets_per_second = 50;
  // GOAWAY to a connection without calls for this long.
  absl::Duration max_connection_idle = absl::Minutes(15);
  // GOAWAY to every connection this old (InfiniteDuration: none), then
  // `max_connection_age_grace` for its calls to finish.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // Connections one client identity may hold at once.
  int max_connections_per_identity = 64;

  // Calls one connection may have in the server at once. gRPC counts only
  // open streams against max_concurrent_streams; a call whose stream the
  // client reset is still being worked on, so a client that resets and
  // reopens streams can hold more calls than streams (CVE-2023-44487). The
  // limit is ten times the streams: a client may open more streams than
  // max_concurrent_streams before it has the server's SETTINGS (a burst of
  // calls queued while the channel connected), and a slow holder keeps them.
  int max_calls_per_connection() const { return 10 * max_concurrent_streams; }

  // Memory growth (anonymous resident memory beyond what the process held
  // when its servers started) at which the stream guard starts closing the
  // connections that hold the most calls: three quarters of the ceiling,
  // leaving it room to act before gRPC's own quota is exhausted.
  uint64_t memory_high_water_bytes() const { return max_memory_bytes / 4 * 3; }

  // The limits `proto` sets, defaults for the rest. A value out of range is
  // InvalidArgument naming "<config>: field server_limits.<name>", the value
  // and the allowed range.
  static absl::StatusOr<ServerLimits> FromProto(
      const accord::v1::ServerLimits& proto, absl::string_view config_path);
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERVER_LIMITS_H_
