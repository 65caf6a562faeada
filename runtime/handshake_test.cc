#include "runtime/handshake.h"

#include <gmock/gmock.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "runtime/crypto.h"
#include "runtime/test_pki.h"
#include "runtime/tls.h"

namespace accord {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A real partnership PKI made by deploy/pki (including the certificates that
// must be refused), once for the whole suite.
class HandshakeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        testing::MakeTestPki("accord-handshake", "t.accord", {"police"}));
    ASSERT_FALSE(dir_->empty());
  }
  static void TearDownTestSuite() {
    testing::RemoveTestPki(*dir_);
    delete dir_;
  }
  static int Run(const std::string& cmd) { return testing::RunQuietly(cmd); }
  static std::string Path(const std::string& file) {
    return absl::StrCat(*dir_, "/", file);
  }
  static std::string Pem(const std::string& name) {
    return *ReadFile(Path(name + ".pem"));
  }
  // `openssl x509 -fingerprint -sha256` of DIR/<name>.pem, as lower-case hex
  // without colons.
  static std::string OpenSslFingerprint(const std::string& name) {
    const std::string out = Path(name + ".fp");
    EXPECT_EQ(std::system(absl::StrCat("openssl x509 -noout -fingerprint ",
                                       "-sha256 -in ", Path(name + ".pem"),
                                       " > ", out)
                              .c_str()),
              0);
    std::string text = *ReadFile(out);
    text = text.substr(text.find('=') + 1);
    absl::StripAsciiWhitespace(&text);
    return absl::AsciiStrToLower(absl::StrReplaceAll(text, {{":", ""}}));
  }
  static std::unique_ptr<ClientCertificateVerifier> Verifier(
      const Clock* clock = nullptr) {
    auto v = ClientCertificateVerifier::Create(Path("ca.pem"), clock);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *std::move(v) : nullptr;
  }
  static void Replace(const std::string& path, const std::string& text) {
    std::ofstream(path + ".new") << text;
    ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  }

  static std::string* dir_;
};
std::string* HandshakeTest::dir_ = nullptr;

TEST_F(HandshakeTest, PartnershipCertificatesWithClientAuthAreAccepted) {
  auto v = Verifier();
  for (const char* name : {"org-police", "agent-police", "gateway"}) {
    SCOPED_TRACE(name);
    auto refusal = v->Verify(Pem(name), "");
    EXPECT_FALSE(refusal.has_value()) << refusal->reason;
  }
}

TEST_F(HandshakeTest, IdentityIsLeftToThePerCallCheck) {
  // Chain, validity and usage are right; the missing or foreign SPIFFE
  // identity is refused (and audited with its call) by runtime/identity.
  auto v = Verifier();
  EXPECT_FALSE(v->Verify(Pem("no-uri-org-police"), "").has_value());
  EXPECT_FALSE(v->Verify(Pem("other-domain-org-police"), "").has_value());
}

TEST_F(HandshakeTest, ExpiredCertificateIsRefusedNamingWhen) {
  auto refusal = Verifier()->Verify(Pem("expired-org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("certificate expired at 20"));
  EXPECT_THAT(refusal->reason, ::testing::EndsWith("Z"));
  // What it claims to be, for the record, unverified.
  EXPECT_EQ(refusal->claimed_identity, "spiffe://t.accord/org/police");
  EXPECT_THAT(refusal->claimed_subject, HasSubstr("CN=police"));
  EXPECT_EQ(refusal->fingerprint, OpenSslFingerprint("expired-org-police"));
  EXPECT_EQ(refusal->fingerprint.size(), 64u);
}

TEST_F(HandshakeTest, NotYetValidCertificateIsRefused) {
  auto refusal = Verifier()->Verify(Pem("not-yet-valid-org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("certificate not valid before 20"));
}

TEST_F(HandshakeTest, ValidityFollowsTheInjectedClock) {
  FakeClock clock(absl::Now());
  auto v = Verifier(&clock);
  EXPECT_FALSE(v->Verify(Pem("org-police"), "").has_value());
  clock.Advance(absl::Hours(24 * 900));  // past the 825-day leaf lifetime
  auto refusal = v->Verify(Pem("org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("certificate expired at"));
  // Before its issue (and its CA's, which the reason then names).
  clock.Set(absl::Now() - absl::Hours(48));
  refusal = v->Verify(Pem("org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, HasSubstr("certificate not valid before 20"));
  // The not-yet-valid certificate is good a year from now.
  clock.Set(absl::Now() + absl::Hours(24 * 400));
  EXPECT_FALSE(v->Verify(Pem("not-yet-valid-org-police"), "").has_value());
}

TEST_F(HandshakeTest, CertificateFromAnotherCaIsRefused) {
  auto v = Verifier();
  // Same subject as the partnership CA, different key.
  auto refusal = v->Verify(Pem("rogue-org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("unknown CA"));
  EXPECT_EQ(refusal->claimed_identity, "spiffe://t.accord/org/police");
  // Presenting the rogue CA alongside does not help: presented certificates
  // never end a chain.
  refusal = v->Verify(Pem("rogue-org-police"), Pem("rogue-ca"));
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("unknown CA"));
  refusal = v->Verify(Pem("rogue-org-police") + Pem("rogue-ca"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("unknown CA"));
  // Nor does presenting a CA certificate itself.
  refusal = v->Verify(Pem("rogue-ca"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("unknown CA"));
  // The partnership CA's own certificate is not a client certificate.
  refusal = v->Verify(Pem("ca"), "");
  ASSERT_TRUE(refusal.has_value());
}

TEST_F(HandshakeTest, CertificateWithoutClientAuthUsageIsRefused) {
  auto refusal = Verifier()->Verify(Pem("server-only-org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("no clientAuth usage"));
}

TEST_F(HandshakeTest, CertificateWithoutExtendedKeyUsageIsRefused) {
  // Signed by the partnership CA, but with no extendedKeyUsage at all (which
  // OpenSSL's purpose check alone would accept).
  const std::string cmd = absl::StrCat(
      "cd ", *dir_,
      " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
      "-nodes -keyout no-eku.key -out no-eku.csr -subj /O=t.accord/CN=police"
      " && printf 'basicConstraints=critical,CA:FALSE\\n"
      "subjectAltName=URI:spiffe://t.accord/org/police\\n' > no-eku.ext"
      " && openssl x509 -req -in no-eku.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -days 30 -extfile no-eku.ext -out no-eku.pem");
  ASSERT_EQ(Run(cmd), 0);
  auto refusal = Verifier()->Verify(Pem("no-eku"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("no clientAuth usage"));
}

TEST_F(HandshakeTest, AnythingUnparseableIsRefused) {
  auto v = Verifier();
  const std::string good = Pem("org-police");
  struct Case {
    std::string leaf;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", "no client certificate presented"},
      {"not a certificate", "cannot be parsed"},
      {good.substr(0, good.size() / 2), "cannot be parsed"},
      {absl::StrReplaceAll(good, {{"MI", "XX"}}), "cannot be parsed"},
      {std::string("\0\xff\x30\x82", 4), "cannot be parsed"},
  };
  for (const auto& c : cases) {
    auto refusal = v->Verify(c.leaf, "");
    ASSERT_TRUE(refusal.has_value());
    EXPECT_THAT(refusal->reason, HasSubstr(c.reason));
    EXPECT_TRUE(refusal->fingerprint.empty());
  }
  // Garbage in the chain does not turn a bad certificate into a good one,
  // nor a good one into a bad one.
  EXPECT_TRUE(v->Verify(Pem("expired-org-police"), "junk").has_value());
  EXPECT_FALSE(v->Verify(good, "junk").has_value());
}

TEST_F(HandshakeTest, ClaimsAreBoundedAndPrintable) {
  // A subject with control characters and a long value, as an attacker's
  // self-made certificate could carry.
  const std::string cmd = absl::StrCat(
      "cd ", *dir_,
      " && X=$(printf 'x\\033[31my%.0s' $(seq 1 9))"
      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
      "-nodes -keyout odd.key -out odd.pem -days 5 -subj "
      "\"/O=t.accord/OU=$X/CN=$X/L=$X/ST=$X/street=$X\"");
  ASSERT_EQ(Run(cmd), 0);
  auto refusal = Verifier()->Verify(Pem("odd"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_LE(refusal->claimed_subject.size(), 260u);
  for (char c : refusal->claimed_subject + DescribeRefusal(*refusal)) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20);
    EXPECT_LT(static_cast<unsigned char>(c), 0x7f);
  }
}

TEST_F(HandshakeTest, DescriptionMarksTheClaimUnverified) {
  auto refusal = Verifier()->Verify(Pem("expired-org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  const std::string line = DescribeRefusal(*refusal);
  EXPECT_THAT(line, StartsWith("TLS handshake refused: certificate expired"));
  EXPECT_THAT(line, HasSubstr("unverified"));
  EXPECT_THAT(line, HasSubstr("spiffe://t.accord/org/police"));
  EXPECT_THAT(line, HasSubstr(refusal->fingerprint));
}

TEST_F(HandshakeTest, CaBundleIsRequiredAtStart) {
  EXPECT_EQ(
      ClientCertificateVerifier::Create(Path("missing.pem")).status().code(),
      absl::StatusCode::kNotFound);
  std::ofstream(Path("empty-ca.pem")) << "no certificates here\n";
  auto v = ClientCertificateVerifier::Create(Path("empty-ca.pem"));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("no PEM certificate"));
}

TEST_F(HandshakeTest, CaBundleReloadsWhenItsFileChanges) {
  const std::string ca = Path("reload-ca.pem");
  std::ofstream(ca) << Pem("ca");
  auto created = ClientCertificateVerifier::Create(ca);
  ASSERT_TRUE(created.ok()) << created.status();
  auto& v = *created;
  EXPECT_FALSE(v->Verify(Pem("org-police"), "").has_value());
  EXPECT_TRUE(v->Verify(Pem("rogue-org-police"), "").has_value());
  EXPECT_FALSE(*v->ReloadIfChanged());  // unchanged

  // The partnership moves to another CA.
  Replace(ca, Pem("rogue-ca"));
  ASSERT_TRUE(*v->ReloadIfChanged());
  EXPECT_FALSE(v->Verify(Pem("rogue-org-police"), "").has_value());
  auto refusal = v->Verify(Pem("org-police"), "");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_THAT(refusal->reason, StartsWith("unknown CA"));

  // A broken file is reported once; the bundle in force stays.
  Replace(ca, "garbage\n");
  auto bad = v->ReloadIfChanged();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(*v->ReloadIfChanged());
  EXPECT_FALSE(v->Verify(Pem("rogue-org-police"), "").has_value());
  EXPECT_TRUE(v->Verify(Pem("org-police"), "").has_value());
  // So is a missing one.
  ASSERT_EQ(std::remove(ca.c_str()), 0);
  EXPECT_EQ(v->ReloadIfChanged().status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(*v->ReloadIfChanged());
  EXPECT_TRUE(v->Verify(Pem("org-police"), "").has_value());

  // Both CAs in one bundle (a CA rollover): both accepted.
  Replace(ca, Pem("ca") + Pem("rogue-ca"));
  ASSERT_TRUE(*v->ReloadIfChanged());
  EXPECT_FALSE(v->Verify(Pem("org-police"), "").has_value());
  EXPECT_FALSE(v->Verify(Pem("rogue-org-police"), "").has_value());
}

TEST_F(HandshakeTest, ReloadChecksAtMostOncePerInterval) {
  const std::string ca = Path("due-ca.pem");
  std::ofstream(ca) << Pem("ca");
  FakeClock clock(absl::Now());
  auto created = ClientCertificateVerifier::Create(ca, &clock);
  ASSERT_TRUE(created.ok());
  auto& v = *created;
  Replace(ca, Pem("rogue-ca"));
  EXPECT_FALSE(*v->ReloadIfDue(absl::Seconds(1)));  // checked at creation
  EXPECT_TRUE(v->Verify(Pem("rogue-org-police"), "").has_value());
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(*v->ReloadIfDue(absl::Seconds(1)));
  EXPECT_FALSE(v->Verify(Pem("rogue-org-police"), "").has_value());
}

TEST(RefusalRateLimiterTest, BurstIsBoundedAndTheLeftOutAreCounted) {
  FakeClock clock(absl::FromUnixSeconds(1800000000));
  RefusalRateLimiter limiter(/*per_second=*/2, /*burst=*/3, &clock);
  int admitted = 0;
  for (int i = 0; i < 100; ++i) {
    auto left_out = limiter.Admit();
    if (left_out.has_value()) {
      EXPECT_EQ(*left_out, 0u);
      ++admitted;
    }
  }
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(limiter.suppressed(), 97u);
  // Half a second later one more is admitted, carrying the count.
  clock.Advance(absl::Milliseconds(500));
  auto next = limiter.Admit();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 97u);
  EXPECT_EQ(limiter.suppressed(), 0u);
  EXPECT_FALSE(limiter.Admit().has_value());
  EXPECT_EQ(limiter.suppressed(), 1u);
  // A long quiet spell refills only up to the burst.
  clock.Advance(absl::Hours(1));
  admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += limiter.Admit().has_value();
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(limiter.suppressed(), 7u);
}

// Against a real gRPC server on loopback: gRPC calls Accord's verifier in
// every handshake, a refusal fails the handshake, and the hook hears of it.
class HandshakeServerTest : public HandshakeTest {
 protected:
  void SetUp() override {
    accord::v1::TlsFiles tls;
    tls.set_ca_file(Path("ca.pem"));
    tls.set_cert_file(Path("gateway.pem"));
    tls.set_key_file(Path("gateway.key"));
    auto creds = MakeServerCredentials(tls, [this](const HandshakeRefusal& r) {
      absl::MutexLock lock(&mu_);
      refusals_.push_back(r);
    });
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  // A call as DIR/<cert>.pem; UNIMPLEMENTED means the handshake succeeded
  // (the server has no methods).
  grpc::Status CallAs(const std::string& cert) {
    accord::v1::TlsFiles tls;
    tls.set_ca_file(Path("ca.pem"));
    tls.set_cert_file(Path(cert + ".pem"));
    tls.set_key_file(Path(cert + ".key"));
    auto creds = MakeChannelCredentials(tls, "spiffe://t.accord/gateway");
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args = DefaultChannelArguments();
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    grpc::GenericStub stub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port_), *creds, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Slice slice(std::string("x"));
    grpc::ByteBuffer request(&slice, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/accord.v1.Test/Call", grpc::StubOptions(), &request,
                   &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }
  std::vector<HandshakeRefusal> Refusals() {
    absl::MutexLock lock(&mu_);
    return refusals_;
  }

  grpc::CallbackGenericService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<HandshakeRefusal> refusals_ ABSL_GUARDED_BY(mu_);
};

TEST_F(HandshakeServerTest, RefusedCertificatesFailTheHandshakeAndAreReported) {
  EXPECT_EQ(CallAs("org-police").error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(Refusals().empty());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"expired-org-police", "certificate expired at"},
      {"not-yet-valid-org-police", "certificate not valid before"},
      {"rogue-org-police", "unknown CA"},
      {"server-only-org-police", "no clientAuth usage"},
  };
  for (const auto& [cert, reason] : cases) {
    SCOPED_TRACE(cert);
    const size_t before = Refusals().size();
    EXPECT_EQ(CallAs(cert).error_code(), grpc::StatusCode::UNAVAILABLE);
    const auto refusals = Refusals();
    ASSERT_GT(refusals.size(), before);
    EXPECT_THAT(refusals.back().reason, StartsWith(reason));
    EXPECT_EQ(refusals.back().claimed_identity, "spiffe://t.accord/org/police");
    EXPECT_EQ(refusals.back().fingerprint, OpenSslFingerprint(cert));
  }
  // Still serving.
  EXPECT_EQ(CallAs("agent-police").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace accord
