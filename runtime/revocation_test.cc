#include "runtime/revocation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"
#include "runtime/test_pki.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

// A real partnership PKI made by deploy/pki, once for the whole suite.
class RevocationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        testing::MakeTestPki("accord-crl", "t.accord", {"police", "refuge"}));
    ASSERT_FALSE(dir_->empty());
  }
  static void TearDownTestSuite() {
    testing::RemoveTestPki(*dir_);
    delete dir_;
  }
  static int Run(const std::string& cmd) { return testing::RunQuietly(cmd); }
  static std::string Pem(const std::string& name) {
    return *ReadFile(absl::StrCat(*dir_, "/", name, ".pem"));
  }
  // A certificate of its own for a test, so the other tests are unaffected.
  static bool Issue(const std::string& name, const std::string& org) {
    return testing::IssueTestCertificate(
        *dir_, name, absl::StrCat("/O=t.accord/OU=org/CN=", org),
        absl::StrCat("URI:spiffe://t.accord/org/", org), "clientAuth");
  }
  static std::string* dir_;
};
std::string* RevocationTest::dir_ = nullptr;

TEST_F(RevocationTest, RevokedCertificateIsRefusedOthersPass) {
  auto list = RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE((*list)->configured());
  EXPECT_GE((*list)->revoked_count(), 1u);
  EXPECT_GT((*list)->next_update(), absl::Now());
  const absl::Status revoked = (*list)->Check(Pem("revoked-org-police"));
  EXPECT_EQ(revoked.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(revoked.message(), HasSubstr("has been revoked"));
  EXPECT_TRUE((*list)->Check(Pem("org-police")).ok());
  EXPECT_TRUE((*list)->Check(Pem("gateway")).ok());
  EXPECT_EQ((*list)->Check("not a certificate").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(RevocationTest, RevocationAfterLoadTakesEffectOnReload) {
  ASSERT_TRUE(Issue("org-refuge-2", "refuge"));
  auto list = RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE((*list)->Check(Pem("org-refuge-2")).ok());
  EXPECT_EQ(*(*list)->ReloadIfChanged(), false);  // unchanged file
  ASSERT_TRUE(testing::RevokeTestCertificate(*dir_, "org-refuge-2"));
  auto reloaded = (*list)->ReloadIfChanged();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(*reloaded);
  EXPECT_EQ((*list)->Check(Pem("org-refuge-2")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*list)->Check(Pem("org-refuge")).ok());
}

TEST_F(RevocationTest, CrlNotSignedByThePartnershipCaIsRefused) {
  // A CRL signed by the rogue CA (same subject as the real CA, other key).
  const std::string forged = *dir_ + "/forged-crl.pem";
  ASSERT_EQ(Run(absl::StrCat("cd ", *dir_, " && ACCORD_PKI_DIR=", *dir_,
                             " ACCORD_SAN=DNS:x ACCORD_EKU=clientAuth",
                             " openssl ca -config openssl-ca.cnf -gencrl ",
                             "-keyfile rogue-ca.key -cert rogue-ca.pem ",
                             "-crldays 1 -out ", forged)),
            0);
  auto list = RevocationList::Load(forged, *dir_ + "/ca.pem");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(list.status().message(), HasSubstr("signature does not verify"));

  // A bad replacement of a loaded CRL keeps the previous one in force.
  const std::string live = *dir_ + "/live-crl.pem";
  ASSERT_EQ(Run(absl::StrCat("cp ", *dir_, "/crl.pem ", live)), 0);
  auto good = RevocationList::Load(live, *dir_ + "/ca.pem");
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(Run(absl::StrCat("cp ", forged, " ", live)), 0);
  EXPECT_FALSE((*good)->ReloadIfChanged().ok());
  EXPECT_EQ((*good)->Check(Pem("revoked-org-police")).code(),
            absl::StatusCode::kPermissionDenied);
  // Reported once, not on every poll.
  EXPECT_TRUE((*good)->ReloadIfChanged().ok());
}

TEST_F(RevocationTest, GarbageCrlFileNamesTheFile) {
  const std::string bad = *dir_ + "/garbage-crl.pem";
  std::ofstream(bad)
      << "-----BEGIN X509 CRL-----\nnope\n-----END X509 CRL-----\n";
  auto list = RevocationList::Load(bad, *dir_ + "/ca.pem");
  EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(list.status().message(), HasSubstr(bad));
}

TEST_F(RevocationTest, LapsedCrlRefusesEveryone) {
  FakeClock clock(absl::Now());
  auto list =
      RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem", &clock);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE((*list)->Check(Pem("org-police")).ok());
  clock.Set((*list)->next_update() + absl::Seconds(1));
  const absl::Status s = (*list)->Check(Pem("org-police"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("lapsed"));
  EXPECT_THAT(s.message(), HasSubstr("revoke.sh"));
}

TEST_F(RevocationTest, CachedAcceptanceBecomesRefusalWhenAReloadRevokes) {
  ASSERT_TRUE(Issue("org-police-3", "police"));
  const std::string live = *dir_ + "/cache-crl.pem";
  ASSERT_EQ(Run(absl::StrCat("cp ", *dir_, "/crl.pem ", live)), 0);
  auto list = RevocationList::Load(live, *dir_ + "/ca.pem");
  ASSERT_TRUE(list.ok()) << list.status();
  const std::string pem = Pem("org-police-3");
  EXPECT_TRUE((*list)->Check(pem).ok());
  EXPECT_EQ((*list)->cached_count(), 1u);
  EXPECT_TRUE((*list)->Check(pem).ok());  // from the cache
  EXPECT_EQ((*list)->cached_count(), 1u);

  ASSERT_TRUE(testing::RevokeTestCertificate(*dir_, "org-police-3"));
  ASSERT_EQ(Run(absl::StrCat("cp ", *dir_, "/crl.pem ", live)), 0);
  auto reloaded = (*list)->ReloadIfChanged();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ASSERT_TRUE(*reloaded);
  EXPECT_EQ((*list)->cached_count(), 0u);  // the reload emptied the cache
  const absl::Status refused = (*list)->Check(pem);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.message(), HasSubstr("has been revoked"));
  // The refusal is cached too, and still a refusal.
  EXPECT_EQ((*list)->cached_count(), 1u);
  EXPECT_EQ((*list)->Check(pem).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RevocationTest, CacheIsBoundedAndVerdictsStayRight) {
  auto list = RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem",
                                   nullptr, /*cached_certificates=*/4);
  ASSERT_TRUE(list.ok()) << list.status();
  const std::vector<std::string> accepted = {
      "gateway",      "agent-police",       "org-police",
      "agent-refuge", "org-refuge",         "unknown-org",
      "no-uri-org-police", "server-only-org-police"};
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& name : accepted) {
      EXPECT_TRUE((*list)->Check(Pem(name)).ok()) << name;
      EXPECT_EQ((*list)->Check(Pem("revoked-org-police")).code(),
                absl::StatusCode::kPermissionDenied);
      EXPECT_LE((*list)->cached_count(), 4u);
    }
  }
  EXPECT_GE((*list)->cached_count(), 1u);

  auto uncached = RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem",
                                       nullptr, /*cached_certificates=*/0);
  ASSERT_TRUE(uncached.ok()) << uncached.status();
  EXPECT_TRUE((*uncached)->Check(Pem("org-police")).ok());
  EXPECT_EQ((*uncached)->Check(Pem("revoked-org-police")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*uncached)->cached_count(), 0u);
}

TEST_F(RevocationTest, LapsedCrlRefusesCertificatesAcceptedFromTheCache) {
  FakeClock clock(absl::Now());
  auto list =
      RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem", &clock);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_TRUE((*list)->Check(Pem("org-refuge")).ok());
  ASSERT_EQ((*list)->cached_count(), 1u);
  clock.Set((*list)->next_update() + absl::Seconds(1));
  const absl::Status s = (*list)->Check(Pem("org-refuge"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("lapsed"));
}

TEST_F(RevocationTest, ConcurrentChecksAgree) {
  auto list = RevocationList::Load(*dir_ + "/crl.pem", *dir_ + "/ca.pem",
                                   nullptr, /*cached_certificates=*/2);
  ASSERT_TRUE(list.ok()) << list.status();
  const std::string good = Pem("org-police");
  const std::string other = Pem("agent-police");
  const std::string revoked = Pem("revoked-org-police");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!(*list)->Check(good).ok()) ++wrong;
        if (!(*list)->Check(other).ok()) ++wrong;
        if ((*list)->Check(revoked).code() !=
            absl::StatusCode::kPermissionDenied)
          ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE((*list)->cached_count(), 2u);
}

TEST_F(RevocationTest, NoCrlConfiguredRevokesNothing) {
  auto list = RevocationList::Load("", *dir_ + "/ca.pem");
  ASSERT_TRUE(list.ok());
  EXPECT_FALSE((*list)->configured());
  EXPECT_TRUE((*list)->Check(Pem("revoked-org-police")).ok());
}

}  // namespace
}  // namespace accord
