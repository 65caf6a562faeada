#include "runtime/crypto.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

TEST(CryptoTest, HmacSha256MatchesRfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Keys shorter than, and longer than, SHA-256's 64-byte block (the long key
// is hashed first).
TEST(CryptoTest, HmacSha256MatchesRfc4231Cases1And6) {
  EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256(
                std::string(131, '\xaa'),
                "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(CryptoTest, Sha256OfEmptyString) {
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoTest, HexRoundTripAndErrors) {
  auto d = HexDecode("00ffA1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(HexEncode(*d), "00ffa1");
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_THAT(HexDecode("zz").status().message(), HasSubstr("offset 0"));
}

TEST(CryptoTest, SecretFileWithLoosePermissionsIsRefused) {
  const std::string path = ::testing::TempDir() + "/secret.hex";
  { std::ofstream(path) << std::string(64, 'a') << "\n"; }
  chmod(path.c_str(), 0644);
  auto loose = LoadHexSecretFile(path, 32);
  EXPECT_EQ(loose.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(loose.status().message(), HasSubstr("chmod 600"));
  chmod(path.c_str(), 0600);
  auto ok = LoadHexSecretFile(path, 32);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), 32u);
  EXPECT_EQ(LoadHexSecretFile(path, 33).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace accord
