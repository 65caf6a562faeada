#include "runtime/seal.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace accord {
namespace {

using ::testing::HasSubstr;

const std::string kAad =
    ReferralAssociatedData("ref-0001", "rape-crisis", "law-centre");
const std::string kSecret = "case summary: she agreed to share this";

TEST(SealTest, RoundTripOpensWithRecipientKey) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  auto sealed = Seal(recipient.public_key, kSecret, kAad);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->ephemeral_public_key().size(), 32u);
  EXPECT_EQ(sealed->nonce().size(), 12u);
  EXPECT_EQ(sealed->ciphertext().size(), kSecret.size() + 16);
  EXPECT_EQ(sealed->recipient_key_id(), SealKeyId(recipient.public_key));
  EXPECT_EQ(sealed->ciphertext().find("case summary"), std::string::npos);
  auto opened = Open(recipient, *sealed, kAad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kSecret);
}

TEST(SealTest, EachSealIsFresh) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  auto a = Seal(recipient.public_key, kSecret, kAad);
  auto b = Seal(recipient.public_key, kSecret, kAad);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->ephemeral_public_key(), b->ephemeral_public_key());
  EXPECT_NE(a->ciphertext(), b->ciphertext());
}

TEST(SealTest, WrongKeyFails) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  const X25519KeyPair other = GenerateX25519KeyPair();
  auto sealed = Seal(recipient.public_key, kSecret, kAad);
  ASSERT_TRUE(sealed.ok());
  // Named key id mismatch.
  auto opened = Open(other, *sealed, kAad);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("sealed to key"));
  // Without the key id hint the AEAD itself refuses.
  sealed->clear_recipient_key_id();
  opened = Open(other, *sealed, kAad);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(SealTest, TamperedCiphertextNonceOrEphemeralKeyFails) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  auto sealed = Seal(recipient.public_key, kSecret, kAad);
  ASSERT_TRUE(sealed.ok());
  {
    auto t = *sealed;
    (*t.mutable_ciphertext())[3] ^= 0x01;
    EXPECT_EQ(Open(recipient, t, kAad).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  {
    auto t = *sealed;
    (*t.mutable_ciphertext())[t.ciphertext().size() - 1] ^= 0x80;  // the tag
    EXPECT_EQ(Open(recipient, t, kAad).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  {
    auto t = *sealed;
    (*t.mutable_nonce())[0] ^= 0x01;
    EXPECT_EQ(Open(recipient, t, kAad).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  {
    auto t = *sealed;
    t.set_ephemeral_public_key(GenerateX25519KeyPair().public_key);
    EXPECT_EQ(Open(recipient, t, kAad).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  {
    auto t = *sealed;
    t.mutable_ciphertext()->resize(8);
    EXPECT_EQ(Open(recipient, t, kAad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(SealTest, AssociatedDataBindsReferralSenderAndReceiver) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  auto sealed = Seal(recipient.public_key, kSecret, kAad);
  ASSERT_TRUE(sealed.ok());
  for (const std::string& aad :
       {ReferralAssociatedData("ref-0002", "rape-crisis", "law-centre"),
        ReferralAssociatedData("ref-0001", "refuge", "law-centre"),
        ReferralAssociatedData("ref-0001", "rape-crisis", "employment"),
        std::string()}) {
    EXPECT_EQ(Open(recipient, *sealed, aad).status().code(),
              absl::StatusCode::kPermissionDenied)
        << aad;
  }
  // Length prefixes keep shifted boundaries apart.
  EXPECT_NE(ReferralAssociatedData("ab", "c", "d"),
            ReferralAssociatedData("a", "bc", "d"));
}

TEST(SealTest, RejectsMalformedRecipientKey) {
  EXPECT_EQ(Seal("short", kSecret, kAad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SealTest, LoadsPemKeysFromOpenSsl) {
  const std::string dir = ::testing::TempDir() + "/seal_keys";
  mkdir(dir.c_str(), 0700);
  const std::string key = dir + "/referral.key",
                    pub = dir + "/referral.pub.pem";
  ASSERT_EQ(std::system(absl::StrCat("openssl genpkey -algorithm X25519 -out ",
                                     key, " 2>/dev/null && chmod 600 ", key,
                                     " && openssl pkey -in ", key,
                                     " -pubout -out ", pub)
                            .c_str()),
            0);
  auto pair = LoadX25519PrivateKey(key);
  ASSERT_TRUE(pair.ok()) << pair.status();
  auto public_key = LoadX25519PublicKey(pub);
  ASSERT_TRUE(public_key.ok()) << public_key.status();
  EXPECT_EQ(pair->public_key, *public_key);
  auto sealed = Seal(*public_key, kSecret, kAad);
  ASSERT_TRUE(sealed.ok());
  auto opened = Open(*pair, *sealed, kAad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, kSecret);

  // A private key others can read is refused; a public key is not a private
  // key and vice versa.
  chmod(key.c_str(), 0644);
  EXPECT_THAT(std::string(LoadX25519PrivateKey(key).status().message()),
              HasSubstr(key));
  chmod(key.c_str(), 0600);
  EXPECT_EQ(LoadX25519PublicKey(key).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadX25519PublicKey(dir + "/missing.pem").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace accord
