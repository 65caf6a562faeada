// What Accord can see of, and do to, the connections of its own gRPC
// servers, which gRPC 1.51's API does not offer: each connection's counters
// as gRPC's channelz keeps them (peer, client certificate, streams and
// messages), the bytes the kernel received on its socket, and ending it. The
// stream guard (runtime/stream_guard.h) is built on these.
//
// Channelz and /proc/self/fd are read fresh on every call; nothing is cached.
// Thread-safe.
#ifndef ACCORD_RUNTIME_SERVER_CONNECTIONS_H_
#define ACCORD_RUNTIME_SERVER_CONNECTIONS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace accord {

// A server connection's counters, as gRPC's channelz keeps them.
struct TransportCounters {
  int64_t socket_id = 0;
  std::string peer;      // gRPC's peer address
  std::string identity;  // URI SANs of the client certificate
  std::string certificate_sha256;
  int64_t streams_started = 0;
  int64_t streams_succeeded = 0;  // ended with the server's answer
  int64_t streams_failed = 0;     // ended without it
  int64_t messages_received = 0;
};

// The channelz ids of this process's gRPC servers.
std::vector<int64_t> ChannelzServerIds();
// The one id ChannelzServerIds() has now that `before` did not (0 if none or
// more than one): the server built in between. (A server bound to port 0
// is named by port 0 in channelz, so its port does not find it.)
int64_t NewChannelzServerId(const std::vector<int64_t>& before);
// The channelz id of this process's gRPC server listening on `port`, or 0.
int64_t ChannelzServerId(int port);

// The counters of every connection of server `server_id`. The certificate
// (identity and fingerprint) is read only of connections `known` does not
// know.
std::vector<TransportCounters> ReadTransportCounters(
    int64_t server_id, const std::function<bool(int64_t)>& known = nullptr);

// Bytes received so far on each TCP connection to local port `local_port`,
// by peer address in gRPC's form ("ipv4:127.0.0.1:41236").
absl::flat_hash_map<std::string, uint64_t> BytesReceivedByPeer(int local_port);

// Ends the TCP connection between local port `local_port` and `peer` (gRPC's
// peer string, "ipv4:A.B.C.D:P" or "ipv6:[...]:P"): finds this process's
// socket with those two ends and disconnects it, dropping what it has
// received and not yet been read (the client sees a reset). Returns whether
// it found one.
bool DisconnectPeer(int local_port, absl::string_view peer);

// The process's anonymous resident memory in bytes (what it has allocated
// and touched: resident pages less those backed by files or shared memory,
// which the kernel can drop or that are not this process's alone: a
// memory-mapped store, the program and its libraries), or 0.
uint64_t AnonymousResidentBytes();

// gRPC's peer string for `peer` spelled as this file spells peers (gRPC may
// percent-encode an IPv6 address's brackets), so that two spellings compare.
std::string CanonicalPeer(absl::string_view peer);

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERVER_CONNECTIONS_H_
