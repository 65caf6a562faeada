// The stream guard and the server limits against real gRPC servers on
// loopback with mutual TLS (a PKI made by deploy/pki): requests gRPC cannot
// parse, clients that reset streams, connections holding more calls than
// streams, memory over the high-water mark, and disconnecting one peer.
#include "runtime/stream_guard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "accord/v1/agent.grpc.pb.h"
#include "runtime/server.h"
#include "runtime/server_limits.h"
#include "runtime/tls.h"

namespace accord {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Holder.Disclose that answers at once, or holds every call until the test
// releases it (cancelled calls too, so that they outlive their streams).
class TestHolder final : public accord::v1::Holder::CallbackService {
 public:
  enum class Mode { kAnswer, kHoldUntilCancelled, kHoldUntilReleased };
  explicit TestHolder(Mode mode) : mode_(mode) {}

  grpc::ServerUnaryReactor* Disclose(grpc::CallbackServerContext* ctx,
                                     const accord::v1::DiscloseRequest*,
                                     accord::v1::DiscloseResponse*) override {
    ++handled_;
    if (mode_ == Mode::kAnswer) {
      auto* r = ctx->DefaultReactor();
      r->Finish(grpc::Status::OK);
      return r;
    }
    absl::MutexLock lock(&mu_);
    held_.push_back(std::make_unique<Held>(this));
    return held_.back().get();
  }

  // Answers every call not answered yet.
  void ReleaseAll() {
    absl::MutexLock lock(&mu_);
    for (auto& h : held_) h->Release();
  }

  int handled() const { return handled_.load(); }

 private:
  class Held final : public grpc::ServerUnaryReactor {
   public:
    explicit Held(TestHolder* holder) : holder_(holder) {}
    void OnCancel() override {
      if (holder_->mode_ == Mode::kHoldUntilCancelled) Release();
    }
    void OnDone() override {}  // the holder owns it
    void Release() {
      if (!finished_.exchange(true)) Finish(grpc::Status::OK);
    }

   private:
    TestHolder* const holder_;
    std::atomic<bool> finished_{false};
  };

  const Mode mode_;
  std::atomic<int> handled_{0};
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Held>> held_ ABSL_GUARDED_BY(mu_);
};

class StreamGuardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* src = std::getenv("ACCORD_SOURCE_DIR");
    ASSERT_NE(src, nullptr);
    char tmpl[] = "/tmp/accord-stream-guard-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    const int rc = std::system(
        absl::StrCat(src, "/deploy/pki/make-pki.sh --partnership-id t.accord ",
                     "--org police --out ", *dir_, " >/dev/null 2>&1")
            .c_str());
    ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
  }
  static void TearDownTestSuite() {
    (void)std::system(absl::StrCat("rm -rf '", *dir_, "'").c_str());
    delete dir_;
  }

  static accord::v1::TlsFiles Tls(const std::string& name) {
    accord::v1::TlsFiles tls;
    tls.set_ca_file(absl::StrCat(*dir_, "/ca.pem"));
    tls.set_cert_file(absl::StrCat(*dir_, "/", name, ".pem"));
    tls.set_key_file(absl::StrCat(*dir_, "/", name, ".key"));
    return tls;
  }

  // A server for `service` through StartServer, as the agents run theirs.
  void Start(grpc::Service* service, ServerOptions options = {}) {
    auto creds = MakeServerCredentials(Tls("agent-police"));
    ASSERT_TRUE(creds.ok()) << creds.status();
    options.on_closure = [this](const ConnectionClosure& c) {
      absl::MutexLock lock(&mu_);
      closures_.push_back(c);
    };
    options.on_summary = [this](const StreamChurnSummary& s) {
      absl::MutexLock lock(&mu_);
      summaries_.push_back(s);
    };
    auto started =
        StartServer("127.0.0.1:0", *creds, {service}, {}, std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }

  // The same, with a guard made here from `options`.
  void StartWithGuard(grpc::Service* service, StreamGuardOptions options) {
    options.on_closure = [this](const ConnectionClosure& c) {
      absl::MutexLock lock(&mu_);
      closures_.push_back(c);
    };
    options.on_summary = [this](const StreamChurnSummary& s) {
      absl::MutexLock lock(&mu_);
      summaries_.push_back(s);
    };
    server_.guard = std::make_unique<StreamGuard>(std::move(options), &clock_);
    auto creds = MakeServerCredentials(Tls("agent-police"));
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &server_.port);
    builder.RegisterService(service);
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(server_.guard->InterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    const std::vector<int64_t> before = ChannelzServerIds();
    server_.server = builder.BuildAndStart();
    ASSERT_NE(server_.server, nullptr);
    server_.guard->Watch(server_.port, NewChannelzServerId(before));
  }

  void TearDown() override {
    if (holder_ != nullptr) holder_->ReleaseAll();
    server_.Shutdown(std::chrono::system_clock::now());
    server_ = StartedServer();
    holder_.reset();
  }

  TestHolder* Holder(TestHolder::Mode mode) {
    holder_ = std::make_unique<TestHolder>(mode);
    return holder_.get();
  }

  std::shared_ptr<grpc::Channel> Channel() {
    auto creds = MakeChannelCredentials(Tls("org-police"),
                                        "spiffe://t.accord/agent/police");
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args = DefaultChannelArguments();
    // A connection of its own.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("accord.test.channel", ++channels_);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_.port),
                                     *creds, args);
  }

  static accord::v1::DiscloseRequest Request() {
    accord::v1::DiscloseRequest r;
    r.set_request_id("r-1");
    r.set_requester_org("police");
    r.set_purpose("safeguarding");
    return r;
  }

  // Starts `n` calls on `channel` that the server holds; returns them (the
  // caller resets or abandons them).
  struct Open {
    std::unique_ptr<accord::v1::Holder::Stub> stub;
    struct Call {
      grpc::ClientContext ctx;
      accord::v1::DiscloseRequest request = Request();
      accord::v1::DiscloseResponse response;
      absl::Notification done;
      grpc::Status status;
    };
    std::vector<std::unique_ptr<Call>> calls;
    void Wait() {
      for (auto& c : calls) c->done.WaitForNotification();
    }
  };
  static std::unique_ptr<Open> StartHeld(
      const std::shared_ptr<grpc::Channel>& channel, int n) {
    auto open = std::make_unique<Open>();
    open->stub = accord::v1::Holder::NewStub(channel);
    for (int i = 0; i < n; ++i) {
      auto c = std::make_unique<Open::Call>();
      c->ctx.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
      Open::Call* raw = c.get();
      open->stub->async()->Disclose(&raw->ctx, &raw->request, &raw->response,
                                    [raw](grpc::Status s) {
                                      raw->status = std::move(s);
                                      raw->done.Notify();
                                    });
      open->calls.push_back(std::move(c));
    }
    return open;
  }

  // Makes `n` calls on `channel` and resets each once the server has it,
  // ten at a time, until the guard closes a connection (the channel would
  // make a new one).
  void StartAndReset(const std::shared_ptr<grpc::Channel>& channel, int n) {
    const uint64_t closed = server_.guard->closures();
    for (int done = 0; done < n && server_.guard->closures() == closed;
         done += 10) {
      const int before = holder_->handled();
      auto open = StartHeld(channel, 10);
      if (!Eventually([&] { return holder_->handled() >= before + 10; })) {
        return;  // the connection was closed under them
      }
      for (auto& c : open->calls) c->ctx.TryCancel();
      open->Wait();
    }
  }

  // One call on a channel of its own is answered.
  void ExpectServed() {
    const int before = holder_->handled();
    auto open = StartHeld(Channel(), 1);
    ASSERT_TRUE(Eventually([&] { return holder_->handled() > before; }));
    holder_->ReleaseAll();
    open->Wait();
    EXPECT_TRUE(open->calls[0]->status.ok())
        << open->calls[0]->status.error_message();
  }

  // Waits (up to 20 s) until `pred` holds.
  static bool Eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  std::vector<ConnectionClosure> Closures() {
    absl::MutexLock lock(&mu_);
    return closures_;
  }
  std::vector<StreamChurnSummary> Summaries() {
    absl::MutexLock lock(&mu_);
    return summaries_;
  }

  static std::string* dir_;
  SystemClock clock_;
  std::unique_ptr<TestHolder> holder_;  // outlives the server
  StartedServer server_;
  int channels_ = 0;
  absl::Mutex mu_;
  std::vector<ConnectionClosure> closures_ ABSL_GUARDED_BY(mu_);
  std::vector<StreamChurnSummary> summaries_ ABSL_GUARDED_BY(mu_);
};

std::string* StreamGuardTest::dir_ = nullptr;

TEST(UnparseableRequestMessageTest, NamesTheMethodsRequestType) {
  EXPECT_EQ(UnparseableRequestMessage("/accord.v1.Gateway/Query"),
            "the request is not a valid accord.v1.QueryRequest message");
  EXPECT_EQ(UnparseableRequestMessage("/accord.v1.Holder/Disclose"),
            "the request is not a valid accord.v1.DiscloseRequest message");
  for (const char* unknown :
       {"/accord.v1.Gateway/Nothing", "/no.Such/Query", "Query", "", "/"}) {
    EXPECT_EQ(UnparseableRequestMessage(unknown),
              "the request is not a valid protobuf message of its type")
        << unknown;
  }
}

TEST_F(StreamGuardTest, UnparseableRequestIsInvalidArgumentNamingItsType) {
  TestHolder& holder = *Holder(TestHolder::Mode::kAnswer);
  Start(&holder);
  grpc::GenericStub stub(Channel());
  for (const std::string& bytes :
       {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8),
        std::string("\x12\xff\xff\xff\x0f", 5), std::string(1000, '\x0a')}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/accord.v1.Holder/Disclose", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "the request is not a valid accord.v1.DiscloseRequest message");
  }
  EXPECT_EQ(holder.handled(), 0);
  // A request that parses reaches the handler.
  auto good = accord::v1::Holder::NewStub(Channel());
  grpc::ClientContext ctx;
  accord::v1::DiscloseResponse response;
  EXPECT_TRUE(good->Disclose(&ctx, Request(), &response).ok());
  EXPECT_EQ(holder.handled(), 1);
}

TEST_F(StreamGuardTest, ChannelzNamesEachConnectionItsPeerAndIdentity) {
  TestHolder& holder = *Holder(TestHolder::Mode::kAnswer);
  Start(&holder);
  auto channel = Channel();
  auto stub = accord::v1::Holder::NewStub(channel);
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    accord::v1::DiscloseResponse response;
    ASSERT_TRUE(stub->Disclose(&ctx, Request(), &response).ok());
  }
  const std::vector<int64_t> ids = ChannelzServerIds();
  ASSERT_EQ(ids.size(), 1u);
  const int64_t id = ids[0];
  const auto counters = ReadTransportCounters(id);
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_THAT(counters[0].peer, StartsWith("ipv4:127.0.0.1:"));
  EXPECT_EQ(counters[0].identity, "spiffe://t.accord/org/police");
  EXPECT_EQ(counters[0].certificate_sha256.size(), 64u);
  EXPECT_EQ(counters[0].streams_started, 3);
  EXPECT_TRUE(Eventually(
      [&] { return ReadTransportCounters(id)[0].streams_succeeded == 3; }));
  EXPECT_EQ(ReadTransportCounters(id)[0].streams_failed, 0);
  EXPECT_TRUE(ReadTransportCounters(id + 1000).empty());
}

TEST_F(StreamGuardTest, ConnectionThatResetsStreamsIsClosedAndReportedOnce) {
  TestHolder& holder = *Holder(TestHolder::Mode::kHoldUntilCancelled);
  ServerOptions options;
  options.limits.stream_reset_burst = 20;
  options.limits.stream_resets_per_second = 5;
  options.report_interval = absl::Hours(1);  // summaries only when asked
  Start(&holder, std::move(options));

  auto first = Channel();
  StartAndReset(first, 100);
  ASSERT_TRUE(Eventually([&] { return server_.guard->closures() == 1; }));
  auto closures = Closures();
  ASSERT_EQ(closures.size(), 1u);
  EXPECT_EQ(closures[0].identity, "spiffe://t.accord/org/police");
  EXPECT_EQ(closures[0].certificate_sha256.size(), 64u);
  EXPECT_THAT(closures[0].peer, StartsWith("ipv4:127.0.0.1:"));
  EXPECT_THAT(closures[0].reason, HasSubstr("streams reset by the client"));
  EXPECT_THAT(closures[0].reason, HasSubstr("allowed: 20 at once, 5 a second"));
  // The client sees its connection end: the next call needs a new one.
  EXPECT_TRUE(
      Eventually([&] { return first->GetState(false) != GRPC_CHANNEL_READY; }));

  // A second connection of the same identity doing the same is closed too,
  // but reported only in the summary.
  StartAndReset(Channel(), 100);
  ASSERT_TRUE(Eventually([&] { return server_.guard->closures() == 2; }));
  EXPECT_EQ(Closures().size(), 1u);
  server_.guard->Report();
  const auto summaries = Summaries();
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].identity, "spiffe://t.accord/org/police");
  EXPECT_EQ(summaries[0].closures, 2u);
  EXPECT_GE(summaries[0].resets, 40u);
  EXPECT_LE(summaries[0].resets, 200u);
  EXPECT_THAT(DescribeSummary(summaries[0]),
              HasSubstr("spiffe://t.accord/org/police: "));
  // Nothing new: nothing to report.
  server_.guard->Report();
  EXPECT_EQ(Summaries().size(), 1u);

  // Others are still served.
  ExpectServed();
}

TEST_F(StreamGuardTest, ResetsWithinTheAllowanceAreNotPunished) {
  TestHolder& holder = *Holder(TestHolder::Mode::kHoldUntilCancelled);
  ServerOptions options;
  options.limits.stream_reset_burst = 50;
  Start(&holder, std::move(options));
  auto channel = Channel();
  StartAndReset(channel, 30);
  server_.guard->ScanNow();
  EXPECT_EQ(server_.guard->closures(), 0u);
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_EQ(holder.handled(), 30);
}

TEST_F(StreamGuardTest, ConnectionHoldingMoreCallsThanStreamsIsClosed) {
  // The server keeps working on calls the client has reset; the client
  // opens new streams in their place.
  TestHolder& holder = *Holder(TestHolder::Mode::kHoldUntilReleased);
  StreamGuardOptions options;
  options.reset_burst = 100000;  // only the calls count here
  options.max_calls_per_connection = 20;
  StartWithGuard(&holder, std::move(options));
  auto channel = Channel();
  for (int round = 0; round < 5 && server_.guard->closures() == 0; ++round) {
    auto open = StartHeld(channel, 10);
    ASSERT_TRUE(
        Eventually([&] { return holder.handled() >= 10 * (round + 1); }));
    for (auto& c : open->calls) c->ctx.TryCancel();
    open->Wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(Eventually([&] { return server_.guard->closures() == 1; }));
  const auto closures = Closures();
  ASSERT_EQ(closures.size(), 1u);
  EXPECT_THAT(closures[0].reason,
              HasSubstr("more than the 20 a connection may hold"));
  holder.ReleaseAll();
}

TEST_F(StreamGuardTest, OverTheMemoryHighWaterTheHeaviestConnectionIsClosed) {
  TestHolder& holder = *Holder(TestHolder::Mode::kHoldUntilReleased);
  StreamGuardOptions options;
  options.memory_high_water_bytes = 1;  // always over it
  options.shed_min_calls = 3;
  StartWithGuard(&holder, std::move(options));
  // A connection with fewer calls than that is left alone.
  auto light = Channel();
  auto light_calls = StartHeld(light, 2);
  ASSERT_TRUE(Eventually([&] { return holder.handled() == 2; }));
  auto open = StartHeld(Channel(), 5);
  ASSERT_TRUE(Eventually([&] { return server_.guard->closures() >= 1; }));
  open->Wait();
  for (auto& c : open->calls) {
    EXPECT_EQ(c->status.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  const auto closures = Closures();
  ASSERT_GE(closures.size(), 1u);
  EXPECT_THAT(closures[0].reason, HasSubstr("held the most calls ("));
  EXPECT_EQ(light->GetState(false), GRPC_CHANNEL_READY);
  holder.ReleaseAll();
  light_calls->Wait();
  for (auto& c : light_calls->calls) EXPECT_TRUE(c->status.ok());
}

TEST_F(StreamGuardTest, IdentityOverItsConnectionLimitLosesTheNewest) {
  TestHolder& holder = *Holder(TestHolder::Mode::kAnswer);
  StreamGuardOptions options;
  options.max_connections_per_identity = 2;
  StartWithGuard(&holder, std::move(options));
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 4; ++i) {
    channels.push_back(Channel());
    ASSERT_TRUE(channels.back()->WaitForConnected(
        std::chrono::system_clock::now() + std::chrono::seconds(10)));
    // One at a time, so that the order of connections is known.
    ASSERT_TRUE(Eventually([&] {
      return ReadTransportCounters(ChannelzServerIds()[0]).size() ==
             static_cast<size_t>(i + 1) - server_.guard->closures();
    }));
  }
  ASSERT_TRUE(Eventually([&] { return server_.guard->closures() == 2; }));
  EXPECT_THAT(Closures()[0].reason,
              HasSubstr("connections at once, more than the 2 one identity "
                        "may hold"));
  EXPECT_TRUE(Eventually([&] {
    return channels[2]->GetState(false) != GRPC_CHANNEL_READY &&
           channels[3]->GetState(false) != GRPC_CHANNEL_READY;
  }));
  EXPECT_EQ(channels[0]->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_EQ(channels[1]->GetState(false), GRPC_CHANNEL_READY);
}

// --- Disconnecting one peer --------------------------------------------------

TEST(DisconnectPeerTest, EndsOnlyTheConnectionWithBothEnds) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
            0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  auto connect_one = [&](int* client, int* server, int* client_port) {
    *client = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(
        connect(*client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    *server = accept(listener, nullptr, nullptr);
    sockaddr_in mine{};
    socklen_t l = sizeof(mine);
    getsockname(*client, reinterpret_cast<sockaddr*>(&mine), &l);
    *client_port = ntohs(mine.sin_port);
  };
  int a, a_server, a_port, b, b_server, b_port;
  connect_one(&a, &a_server, &a_port);
  connect_one(&b, &b_server, &b_port);
  // Unread data is dropped, and the client sees the end.
  ASSERT_EQ(send(a, "unread", 6, 0), 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  EXPECT_FALSE(DisconnectPeer(port, "ipv4:127.0.0.1:1"));
  EXPECT_FALSE(
      DisconnectPeer(port + 1, absl::StrCat("ipv4:127.0.0.1:", a_port)));
  EXPECT_FALSE(DisconnectPeer(port, "not a peer"));
  EXPECT_TRUE(DisconnectPeer(port, absl::StrCat("ipv4:127.0.0.1:", a_port)));

  char buf[16];
  EXPECT_LE(recv(a, buf, sizeof(buf), 0), 0);  // reset or end of stream
  EXPECT_LE(recv(a_server, buf, sizeof(buf), MSG_DONTWAIT), 0);
  // The other connection still works.
  ASSERT_EQ(send(b, "x", 1, 0), 1);
  EXPECT_EQ(recv(b_server, buf, sizeof(buf), 0), 1);
  for (int fd : {a, a_server, b, b_server, listener}) close(fd);
}

TEST(AnonymousResidentBytesTest, CountsAllocatedPagesNotMappedFiles) {
  const uint64_t before = AnonymousResidentBytes();
  EXPECT_GT(before, uint64_t{1} << 20);
  // Touch every page, through a volatile pointer so that the compiler
  // keeps the writes.
  std::vector<char> block(64 << 20);
  volatile char* pages = block.data();
  for (size_t i = 0; i < block.size(); i += 4096) pages[i] = 1;
  const uint64_t touched = AnonymousResidentBytes();
  EXPECT_GE(touched, before + (uint64_t{60} << 20));
  EXPECT_EQ(pages[4096], 1);
  // A file mapped and read page by page is resident but not counted.
  // (Written 64 KiB at a time: no large allocation that a sanitizer's
  // quarantine would keep resident.)
  const std::string path = ::testing::TempDir() + "/resident-bytes-mapped";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string chunk(64 << 10, 'x');
    for (int i = 0; i < 512; ++i) out << chunk;
  }
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, 32 << 20, PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const uint64_t before_reading = AnonymousResidentBytes();
  volatile const char* mapped = static_cast<const char*>(map);
  uint64_t sum = 0;
  for (size_t i = 0; i < (32u << 20); i += 4096) sum += mapped[i];
  EXPECT_EQ(sum, uint64_t{'x'} * ((32u << 20) / 4096));
  EXPECT_LT(AnonymousResidentBytes(), before_reading + (uint64_t{8} << 20));
  munmap(map, 32 << 20);
  close(fd);
  std::remove(path.c_str());
}

// --- Limits from configuration
// ------------------------------------------------

TEST(ServerLimitsTest, DefaultsWhenUnset) {
  auto limits = ServerLimits::FromProto({}, "gateway.textproto");
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->max_memory_bytes, uint64_t{512} << 20);
  EXPECT_EQ(limits->memory_high_water_bytes(), uint64_t{384} << 20);
  EXPECT_EQ(limits->max_concurrent_streams, 100);
  EXPECT_EQ(limits->max_calls_per_connection(), 1000);
  EXPECT_EQ(limits->stream_reset_burst, 200);
  EXPECT_EQ(limits->stream_resets_per_second, 50);
  EXPECT_EQ(limits->max_connection_idle, absl::Minutes(15));
  EXPECT_EQ(limits->max_connection_age, absl::InfiniteDuration());
  EXPECT_EQ(limits->max_connection_age_grace, absl::Seconds(30));
  EXPECT_EQ(limits->max_connections_per_identity, 64);
}

TEST(ServerLimitsTest, ValuesInRangeAreTaken) {
  accord::v1::ServerLimits p;
  p.set_max_memory_mb(128);
  p.set_max_concurrent_streams(32);
  p.set_stream_reset_burst(1000);
  p.set_stream_resets_per_second(33);
  p.mutable_max_connection_idle()->set_seconds(60);
  p.mutable_max_connection_age()->set_seconds(3600);
  p.mutable_max_connection_age_grace()->set_seconds(5);
  auto limits = ServerLimits::FromProto(p, "agent.textproto");
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->max_memory_bytes, uint64_t{128} << 20);
  EXPECT_EQ(limits->max_concurrent_streams, 32);
  EXPECT_EQ(limits->max_calls_per_connection(), 320);
  EXPECT_EQ(limits->stream_reset_burst, 1000);
  EXPECT_EQ(limits->stream_resets_per_second, 33);
  EXPECT_EQ(limits->max_connection_idle, absl::Minutes(1));
  EXPECT_EQ(limits->max_connection_age, absl::Hours(1));
  EXPECT_EQ(limits->max_connection_age_grace, absl::Seconds(5));
  // An age of 0 says "no limit" in so many words.
  p.mutable_max_connection_age()->set_seconds(0);
  EXPECT_EQ(ServerLimits::FromProto(p, "agent.textproto")->max_connection_age,
            absl::InfiniteDuration());
}

TEST(ServerLimitsTest, OutOfRangeNamesTheFieldTheValueAndTheRange) {
  struct Case {
    std::function<void(accord::v1::ServerLimits*)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto* p) { p->set_max_memory_mb(10); },
       "field server_limits.max_memory_mb: 10 MiB is outside the allowed "
       "range 64..65536 MiB"},
      {[](auto* p) { p->set_max_memory_mb(1 << 20); },
       "field server_limits.max_memory_mb: 1048576 MiB is outside"},
      {[](auto* p) { p->set_max_concurrent_streams(5000); },
       "field server_limits.max_concurrent_streams: 5000 is outside the "
       "allowed range 1..1000"},
      {[](auto* p) { p->set_stream_reset_burst(5); },
       "field server_limits.stream_reset_burst: 5 is outside the allowed "
       "range 10..100000"},
      {[](auto* p) { p->set_stream_resets_per_second(200000); },
       "field server_limits.stream_resets_per_second: 200000 is outside"},
      {[](auto* p) { p->set_max_connections_per_identity(20000); },
       "field server_limits.max_connections_per_identity: 20000 is outside "
       "the allowed range 1..10000"},
      {[](auto* p) { p->mutable_max_connection_idle()->set_nanos(1000); },
       "field server_limits.max_connection_idle: 1us is outside the allowed "
       "range 1s..24h"},
      {[](auto* p) { p->mutable_max_connection_idle()->set_seconds(-5); },
       "field server_limits.max_connection_idle: -5s is outside"},
      {[](auto* p) { p->mutable_max_connection_age()->set_seconds(30); },
       "field server_limits.max_connection_age: 30s is outside the allowed "
       "range 0 or 1m..168h"},
      {[](auto* p) {
         p->mutable_max_connection_age_grace()->set_seconds(7200);
       },
       "field server_limits.max_connection_age_grace: 2h is outside the "
       "allowed range 1s..1h"},
  };
  for (const auto& c : cases) {
    accord::v1::ServerLimits p;
    c.set(&p);
    auto limits = ServerLimits::FromProto(p, "/etc/accord/gateway.textproto");
    ASSERT_FALSE(limits.ok()) << c.message;
    EXPECT_EQ(limits.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(limits.status().message());
    EXPECT_THAT(message, StartsWith("/etc/accord/gateway.textproto: "));
    EXPECT_THAT(message, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace accord
