#include "runtime/server_connections.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace accord {

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

}  // namespace

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

namespace {

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

uint64_t AnonymousResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0, shared = 0;
  const int n = std::fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
  std::fclose(f);
  if (n != 3 || shared > resident) return 0;
  return static_cast<uint64_t>(resident - shared) *
         static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace accord
