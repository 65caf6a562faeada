#include "runtime/stream_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <grpcpp/server_context.h>
#include <linux/tcp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

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
// gRPC's channelz counters

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// The channelz API answers JSON (a C string the caller frees).
bool ParseChannelz(char* json, Struct* out) {
  if (json == nullptr) return false;
  const bool ok = google::protobuf::util::JsonStringToMessage(json, out).ok();
  gpr_free(json);
  return ok;
}

// The value at `path` (object keys), or null.
const Value* At(const Struct& s, std::initializer_list<const char*> path) {
  const Struct* cur = &s;
  const Value* v = nullptr;
  for (const char* key : path) {
    if (cur == nullptr) return nullptr;
    auto it = cur->fields().find(key);
    if (it == cur->fields().end()) return nullptr;
    v = &it->second;
    cur = v->has_struct_value() ? &v->struct_value() : nullptr;
  }
  return v;
}

// Channelz writes 64-bit numbers as strings.
int64_t Number(const Value* v) {
  if (v == nullptr) return 0;
  if (v->has_number_value()) return static_cast<int64_t>(v->number_value());
  int64_t n = 0;
  if (v->has_string_value() && absl::SimpleAtoi(v->string_value(), &n))
    return n;
  return 0;
}

std::string Text(const Value* v) {
  return v != nullptr && v->has_string_value() ? v->string_value() : "";
}

// The first `"key":"value"` (or `"key":value`) in gRPC's compact channelz
// JSON; its keys are unique within a socket and its strings need no
// unescaping (names, numbers, base64).
absl::string_view RawField(absl::string_view json, absl::string_view key) {
  const std::string pattern = absl::StrCat("\"", key, "\":");
  size_t at = json.find(pattern);
  if (at == absl::string_view::npos) return {};
  at += pattern.size();
  const bool quoted = at < json.size() && json[at] == '"';
  if (quoted) ++at;
  size_t end = at;
  while (end < json.size() &&
         (quoted ? json[end] != '"' : json[end] != ',' && json[end] != '}')) {
    ++end;
  }
  return json.substr(at, end - at);
}

std::string StringField(absl::string_view json, absl::string_view key) {
  return std::string(RawField(json, key));
}

int64_t NumberField(absl::string_view json, absl::string_view key) {
  int64_t n = 0;
  return absl::SimpleAtoi(RawField(json, key), &n) ? n : 0;
}

// The URI SANs of a PEM certificate, comma-separated, and the SHA-256 of
// its DER encoding.
void DescribeCertificate(const std::string& pem, TransportCounters* out) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &digest_len) == 1) {
    out->certificate_sha256 = absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), digest_len));
  }
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  out->identity = absl::StrJoin(uris, ",");
}

}  // namespace

namespace {

// Calls `visit(id, server)` for every server channelz knows, until it
// returns true; returns that server's id, or 0.
int64_t FindServer(const std::function<bool(int64_t, const Struct&)>& visit) {
  int64_t start = 0;
  while (true) {
    Struct servers;
    if (!ParseChannelz(grpc_channelz_get_servers(start), &servers)) return 0;
    const Value* list = At(servers, {"server"});
    if (list == nullptr || !list->has_list_value() ||
        list->list_value().values_size() == 0) {
      return 0;
    }
    for (const Value& server : list->list_value().values()) {
      if (!server.has_struct_value()) continue;
      const int64_t id = Number(At(server.struct_value(), {"ref", "serverId"}));
      start = std::max(start, id + 1);
      if (visit(id, server.struct_value())) return id;
    }
    if (At(servers, {"end"}) != nullptr) return 0;
  }
}

}  // namespace

std::vector<int64_t> ChannelzServerIds() {
  std::vector<int64_t> ids;
  FindServer([&](int64_t id, const Struct&) {
    ids.push_back(id);
    return false;
  });
  return ids;
}

int64_t NewChannelzServerId(const std::vector<int64_t>& before) {
  int64_t found = 0;
  for (int64_t id : ChannelzServerIds()) {
    if (std::find(before.begin(), before.end(), id) != before.end()) continue;
    if (found != 0) return 0;
    found = id;
  }
  return found;
}

int64_t ChannelzServerId(int port) {
  const std::string suffix = absl::StrCat(":", port);
  return FindServer([&](int64_t, const Struct& server) {
    const Value* listeners = At(server, {"listenSocket"});
    if (listeners == nullptr || !listeners->has_list_value()) return false;
    for (const Value& l : listeners->list_value().values()) {
      if (l.has_struct_value() &&
          absl::EndsWith(Text(At(l.struct_value(), {"name"})), suffix)) {
        return true;
      }
    }
    return false;
  });
}

std::vector<TransportCounters> ReadTransportCounters(
    int64_t server_id, const std::function<bool(int64_t)>& known) {
  std::vector<TransportCounters> out;
  int64_t start = 0;
  while (true) {
    Struct page;
    if (!ParseChannelz(grpc_channelz_get_server_sockets(server_id, start, 0),
                       &page)) {
      return out;
    }
    const Value* refs = At(page, {"socketRef"});
    for (int i = 0; refs != nullptr && refs->has_list_value() &&
                    i < refs->list_value().values_size();
         ++i) {
      const Value& ref = refs->list_value().values(i);
      if (!ref.has_struct_value()) continue;
      const int64_t id = Number(At(ref.struct_value(), {"socketId"}));
      start = std::max(start, id + 1);
      char* json = grpc_channelz_get_socket(id);
      if (json == nullptr) continue;
      // Read as text: this runs for every connection every scan, and the
      // few flat fields wanted do not need a JSON parser.
      const absl::string_view socket(json);
      TransportCounters c;
      c.socket_id = id;
      // The socket's name is "<transport> <peer>" (in "ref"; an address
      // of another kind than TCP has a "name" too).
      const size_t at = socket.find("\"ref\":");
      const std::string name = StringField(
          at == absl::string_view::npos ? socket : socket.substr(at), "name");
      c.peer = name.substr(name.find(' ') + 1);
      c.streams_started = NumberField(socket, "streamsStarted");
      c.streams_succeeded = NumberField(socket, "streamsSucceeded");
      c.streams_failed = NumberField(socket, "streamsFailed");
      c.messages_received = NumberField(socket, "messagesReceived");
      std::string pem;
      if ((known == nullptr || !known(id)) &&
          absl::Base64Unescape(StringField(socket, "remote_certificate"),
                               &pem)) {
        DescribeCertificate(pem, &c);
      }
      gpr_free(json);
      out.push_back(std::move(c));
    }
    if (At(page, {"end"}) != nullptr || refs == nullptr ||
        !refs->has_list_value() || refs->list_value().values_size() == 0) {
      return out;
    }
  }
}

// ---------------------------------------------------------------------------
// Finding a connection's socket

namespace {

struct Endpoint {
  int family = 0;
  in_addr v4{};
  in6_addr v6{};
  int port = 0;
};

// Parses gRPC's peer string: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000" (the
// brackets possibly percent-encoded).
bool ParsePeer(absl::string_view peer, Endpoint* out) {
  std::string p = absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5D", "]"}});
  const size_t colon = p.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(p.substr(colon + 1), &out->port)) {
    return false;
  }
  std::string host = p.substr(0, colon);
  if (absl::StartsWith(host, "ipv4:")) {
    out->family = AF_INET;
    return inet_pton(AF_INET, host.substr(5).c_str(), &out->v4) == 1;
  }
  if (absl::StartsWith(host, "ipv6:")) {
    host = host.substr(5);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (const size_t zone = host.find('%'); zone != std::string::npos) {
      host.resize(zone);
    }
    out->family = AF_INET6;
    return inet_pton(AF_INET6, host.c_str(), &out->v6) == 1;
  }
  return false;
}

bool Matches(const sockaddr_storage& a, const Endpoint& e) {
  if (a.ss_family == AF_INET && e.family == AF_INET) {
    const auto& s = reinterpret_cast<const sockaddr_in&>(a);
    return ntohs(s.sin_port) == e.port && s.sin_addr.s_addr == e.v4.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& s = reinterpret_cast<const sockaddr_in6&>(a);
    if (ntohs(s.sin6_port) != e.port) return false;
    if (e.family == AF_INET6) {
      return std::memcmp(&s.sin6_addr, &e.v6, sizeof(in6_addr)) == 0;
    }
    // An IPv4 peer on a dual-stack socket: ::ffff:a.b.c.d.
    return e.family == AF_INET && IN6_IS_ADDR_V4MAPPED(&s.sin6_addr) &&
           std::memcmp(&s.sin6_addr.s6_addr[12], &e.v4, 4) == 0;
  }
  return false;
}

int LocalPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  if (a.ss_family == AF_INET)
    return ntohs(reinterpret_cast<sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<sockaddr_in6&>(a).sin6_port);
  return -1;
}

// gRPC's peer string for a socket address (IPv4 on a dual-stack socket as
// IPv4), "" for other families.
std::string PeerString(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& s = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &s.sin_addr, host, sizeof(host));
    return absl::StrCat("ipv4:", host, ":", ntohs(s.sin_port));
  }
  if (a.ss_family == AF_INET6) {
    const auto& s = reinterpret_cast<const sockaddr_in6&>(a);
    if (IN6_IS_ADDR_V4MAPPED(&s.sin6_addr)) {
      inet_ntop(AF_INET, &s.sin6_addr.s6_addr[12], host, sizeof(host));
      return absl::StrCat("ipv4:", host, ":", ntohs(s.sin6_port));
    }
    inet_ntop(AF_INET6, &s.sin6_addr, host, sizeof(host));
    return absl::StrCat("ipv6:[", host, "]:", ntohs(s.sin6_port));
  }
  return "";
}

// The same for gRPC's own spelling of it (brackets maybe percent-encoded),
// so that the two compare.
std::string CanonicalPeer(absl::string_view peer) {
  Endpoint e;
  if (!ParsePeer(peer, &e)) return std::string(peer);
  sockaddr_storage a{};
  if (e.family == AF_INET) {
    auto& s = reinterpret_cast<sockaddr_in&>(a);
    s.sin_family = AF_INET;
    s.sin_addr = e.v4;
    s.sin_port = htons(static_cast<uint16_t>(e.port));
  } else {
    auto& s = reinterpret_cast<sockaddr_in6&>(a);
    s.sin6_family = AF_INET6;
    s.sin6_addr = e.v6;
    s.sin6_port = htons(static_cast<uint16_t>(e.port));
  }
  return PeerString(a);
}

bool PeerIs(int fd, const Endpoint& peer) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  return getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
         Matches(a, peer);
}

}  // namespace

absl::flat_hash_map<std::string, uint64_t> BytesReceivedByPeer(int local_port) {
  absl::flat_hash_map<std::string, uint64_t> out;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == dirfd(dir)) continue;
    if (LocalPort(fd) != local_port) continue;
    sockaddr_storage a{};
    socklen_t len = sizeof(a);
    tcp_info info{};
    socklen_t info_len = sizeof(info);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) != 0) {
      continue;
    }
    const std::string peer = PeerString(a);
    if (!peer.empty()) out[peer] = info.tcpi_bytes_received;
  }
  closedir(dir);
  return out;
}

bool DisconnectPeer(int local_port, absl::string_view peer) {
  Endpoint e;
  if (local_port <= 0 || !ParsePeer(peer, &e)) return false;
  // gRPC 1.51 does not say which descriptor carries a connection, so look at
  // this process's sockets for the one with both ends (only one TCP
  // connection has this pair). Both are read just before acting, so a
  // descriptor gRPC closed and reused is left alone.
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(dir)) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == dirfd(dir)) continue;
    if (LocalPort(fd) != local_port || !PeerIs(fd, e)) continue;
    // connect(AF_UNSPEC) dissolves a TCP connection at once (Linux: the
    // peer gets a reset and what was received but not read is dropped), so
    // gRPC's next read fails and it ends the transport without parsing
    // more of the client's backlog. shutdown() would leave that backlog to
    // be read.
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    if (connect(fd, &unspec, sizeof(unspec)) == 0 ||
        shutdown(fd, SHUT_RDWR) == 0) {
      found = true;
    }
  }
  closedir(dir);
  return found;
}

uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) *
         static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
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
    if (options_.memory_high_water_bytes > 0 &&
        ResidentBytes() > options_.memory_high_water_bytes) {
      // Memory freed but kept by malloc counts in the resident size; give
      // it back first (at most once a second) and look again.
      if (now - last_trim > absl::Seconds(1)) {
        malloc_trim(0);
        last_trim = now;
      }
      pressure = ResidentBytes() > options_.memory_high_water_bytes;
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
      closings.push_back(CloseLocked(
          &seen[heaviest],
          absl::StrCat("the server's memory passed ",
                       options_.memory_high_water_bytes >> 20,
                       " MiB and this connection held the most calls (",
                       heaviest_calls, ")")));
    }
    // Connections no longer listed have ended.
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
