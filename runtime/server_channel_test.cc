// Channels to Accord's servers against real gRPC servers on loopback with a
// real partnership PKI (deploy/pki): the server's certificate is judged at
// the handshake (identity and CRL), a refused server receives nothing, the
// caller hears why in words without addresses, promptly even when waiting
// for the server, and a CRL reload or lapse applies to a channel already
// open.
#include "runtime/server_channel.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "runtime/clock.h"
#include "runtime/test_pki.h"
#include "tests/fake_server.h"

namespace accord {
namespace {

using ::accord::testing::CountingServer;
using ::accord::testing::IssueTestCertificate;
using ::accord::testing::kFakeServerAnswer;
using ::accord::testing::MakeTestPki;
using ::accord::testing::RemoveTestPki;
using ::accord::testing::RevokeTestCertificate;
using ::accord::testing::RunQuietly;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRefugeAgent[] = "spiffe://t.accord/agent/refuge";

class ServerChannelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        MakeTestPki("accord-dial", "t.accord", {"police", "refuge"}));
    ASSERT_FALSE(dir_->empty());
    // Server certificates of the refuge's agent: one revoked from the
    // start, one to be revoked while a channel to it is open.
    for (const char* name : {"revoked-agent-refuge", "agent-refuge-2"}) {
      ASSERT_TRUE(IssueTestCertificate(
          *dir_, name, "/O=t.accord/OU=agent/CN=refuge",
          absl::StrCat("URI:", kRefugeAgent), "serverAuth,clientAuth"))
          << name;
    }
    ASSERT_TRUE(RevokeTestCertificate(*dir_, "revoked-agent-refuge"));
  }
  static void TearDownTestSuite() {
    RemoveTestPki(*dir_);
    delete dir_;
  }
  static accord::v1::TlsFiles Tls(const std::string& cert) {
    accord::v1::TlsFiles tls;
    tls.set_ca_file(*dir_ + "/ca.pem");
    tls.set_cert_file(absl::StrCat(*dir_, "/", cert, ".pem"));
    tls.set_key_file(absl::StrCat(*dir_, "/", cert, ".key"));
    return tls;
  }

  void SetUp() override {
    // Each test reads its own copy of the CRL, so that revoking in one
    // test leaves the others alone.
    crl_file_ = absl::StrCat(*dir_, "/crl-",
                             ::testing::UnitTest::GetInstance()
                                 ->current_test_info()
                                 ->name(),
                             ".pem");
    ASSERT_EQ(RunQuietly(absl::StrCat("cp ", *dir_, "/crl.pem ", crl_file_)),
              0);
    auto crl = RevocationList::Load(crl_file_, *dir_ + "/ca.pem", &clock_);
    ASSERT_TRUE(crl.ok()) << crl.status();
    crl_ = *std::move(crl);
  }

  // A fake refuge agent presenting DIR/<cert>.pem.
  std::unique_ptr<CountingServer> Server(const std::string& cert) {
    auto server = CountingServer::Start("127.0.0.1:0", Tls(cert));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  // A channel from the gateway to the refuge's agent at `port`.
  std::unique_ptr<ServerChannel> Dial(int port) {
    ServerChannelOptions options;
    options.address = absl::StrCat("127.0.0.1:", port);
    options.tls = Tls("gateway");
    options.expected_identity = kRefugeAgent;
    options.server_name = "the holder's agent";
    options.revocation = crl_.get();
    options.log_prefix = "server_channel_test";
    auto channel = ServerChannel::Open(std::move(options));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }

  // One call on the channel's current connection.
  static grpc::Status Call(ServerChannel& channel, bool wait_for_ready = false,
                           int deadline_seconds = 10) {
    grpc::GenericStub stub(channel.Get());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(deadline_seconds));
    ctx.set_wait_for_ready(wait_for_ready);
    grpc::Slice slice(std::string("x"));
    grpc::ByteBuffer request(&slice, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/accord.v1.Holder/Disclose", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }

  // Waits until the channel's eager handshake has refused the server.
  static bool WaitForRefusal(const ServerChannel& channel) {
    for (int i = 0; i < 500 && !channel.Refusal().has_value(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return channel.Refusal().has_value();
  }

  static std::string* dir_;
  FakeClock clock_{absl::Now()};
  std::string crl_file_;
  std::unique_ptr<RevocationList> crl_;
};
std::string* ServerChannelTest::dir_ = nullptr;

TEST_F(ServerChannelTest, TheExpectedServerIsReached) {
  auto server = Server("agent-refuge");
  ASSERT_NE(server, nullptr);
  auto channel = Dial(server->port());
  ASSERT_NE(channel, nullptr);
  const grpc::Status status = Call(*channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(status.error_message(), kFakeServerAnswer);
  EXPECT_EQ(server->calls(), 1);
  EXPECT_FALSE(channel->Refusal().has_value());
}

TEST_F(ServerChannelTest, RevokedServerReceivesNothingAndTheCallerHearsWhy) {
  auto server = Server("revoked-agent-refuge");
  ASSERT_NE(server, nullptr);
  auto channel = Dial(server->port());
  ASSERT_NE(channel, nullptr);
  for (int i = 0; i < 3; ++i) {
    const grpc::Status status = Call(*channel);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(),
              "the holder's agent presented a revoked certificate");
    // Safe to pass on as it is.
    const grpc::Status for_caller = channel->ForCaller(status);
    EXPECT_EQ(for_caller.error_message(), status.error_message());
    EXPECT_THAT(for_caller.error_message(), Not(HasSubstr("127.0.0.1")));
  }
  EXPECT_EQ(server->calls(), 0);
}

TEST_F(ServerChannelTest, WrongIdentityEndsEvenAWaitingCallPromptly) {
  auto server = Server("agent-police");
  ASSERT_NE(server, nullptr);
  const std::string expected_message =
      "the holder's agent presented the wrong certificate identity: expected "
      "spiffe://t.accord/agent/refuge, presented spiffe://t.accord/agent/police";
  // Called at once, the call may wait for the channel's first handshake;
  // with wait_for_ready it would wait until its deadline if the refusal did
  // not end it.
  for (bool after_refusal : {false, true}) {
    SCOPED_TRACE(after_refusal ? "after the refusal" : "during the handshake");
    auto channel = Dial(server->port());
    ASSERT_NE(channel, nullptr);
    if (after_refusal) {
      // A first call makes the channel connect (it does so at its first
      // call); its handshake is refused.
      (void)Call(*channel, /*wait_for_ready=*/false, /*deadline_seconds=*/10);
      ASSERT_TRUE(WaitForRefusal(*channel));
    }
    const auto start = std::chrono::steady_clock::now();
    const grpc::Status status =
        Call(*channel, /*wait_for_ready=*/true, /*deadline_seconds=*/60);
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(), expected_message);
    // Not its deadline: ended by the refusal (a bound, not a speed target).
    EXPECT_LT(waited, std::chrono::seconds(30));
  }
  EXPECT_EQ(server->calls(), 0);
}

TEST_F(ServerChannelTest, CrlReloadAppliesToAnOpenChannel) {
  auto server = Server("agent-refuge-2");
  ASSERT_NE(server, nullptr);
  auto channel = Dial(server->port());
  ASSERT_NE(channel, nullptr);
  ASSERT_EQ(Call(*channel).error_message(), kFakeServerAnswer);
  ASSERT_EQ(server->calls(), 1);

  ASSERT_TRUE(RevokeTestCertificate(*dir_, "agent-refuge-2"));
  ASSERT_EQ(RunQuietly(absl::StrCat("cp ", *dir_, "/crl.pem ", crl_file_)), 0);
  auto reloaded = crl_->ReloadIfChanged();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ASSERT_TRUE(*reloaded);
  // The connection accepted before the reload is not used again.
  for (int i = 0; i < 3; ++i) {
    const grpc::Status status = Call(*channel);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(status.error_message(),
                HasSubstr("the holder's agent presented a "));
    EXPECT_THAT(status.error_message(), HasSubstr("revoked"));
  }
  EXPECT_EQ(server->calls(), 1);
}

TEST_F(ServerChannelTest, LapsedCrlStopsAnOpenChannel) {
  auto server = Server("agent-refuge");
  ASSERT_NE(server, nullptr);
  auto channel = Dial(server->port());
  ASSERT_NE(channel, nullptr);
  ASSERT_EQ(Call(*channel).error_message(), kFakeServerAnswer);
  clock_.Set(crl_->next_update() + absl::Seconds(1));
  const grpc::Status status = Call(*channel);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the holder's agent cannot be checked: the partnership CRL has "
            "lapsed");
  EXPECT_EQ(server->calls(), 1);
}

TEST_F(ServerChannelTest, UnreachableServerIsReportedWithoutItsAddress) {
  // A port nothing listens on.
  auto server = Server("agent-refuge");
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  server->Stop();
  auto channel = Dial(port);
  ASSERT_NE(channel, nullptr);
  const grpc::Status raw = Call(*channel);
  ASSERT_EQ(raw.error_code(), grpc::StatusCode::UNAVAILABLE);
  const grpc::Status status = channel->ForCaller(raw);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "the holder's agent is unreachable");
  // What the caller does not see: gRPC's text names the address.
  EXPECT_THAT(raw.error_message(), HasSubstr(absl::StrCat(port)));

  const grpc::Status late = channel->ForCaller(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"));
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(late.error_message(), "the holder's agent did not answer in time");
  // The server's own refusals pass unchanged.
  const grpc::Status denied = channel->ForCaller(
      grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the gateway"));
  EXPECT_EQ(denied.error_message(), "not the gateway");
}

}  // namespace
}  // namespace accord
