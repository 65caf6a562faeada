#include "audit/tree_head.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "runtime/clock.h"

namespace accord::audit {
namespace {

using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& data,
                      mode_t mode) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/", name, "_", getpid());
  std::ofstream(path) << data;
  chmod(path.c_str(), mode);
  return path;
}

TEST(TreeHeadTest, SignedDataEncodingIsFixed) {
  Hash root;
  for (int i = 0; i < 32; ++i) root[i] = static_cast<uint8_t>(i);
  const std::string data =
      TreeHeadSignedData(0x0102030405060708, 0x1122334455667788, root);
  ASSERT_EQ(data.size(), 49u);
  EXPECT_EQ(HexEncode(data.substr(0, 17)),
            "01010203040506070811223344556677"
            "88");
  EXPECT_EQ(data.substr(17), std::string(AsBytes(root)));
}

TEST(TreeHeadTest, SignsAndVerifiesAndRejectsAnotherKey) {
  auto pem = GenerateTreeHeadKeyPem();
  ASSERT_TRUE(pem.ok());
  auto signer = TreeHeadSigner::FromPrivateKeyPem(*pem);
  ASSERT_TRUE(signer.ok());
  auto verifier =
      TreeHeadVerifier::FromPublicKeyPem((*signer)->public_key_pem());
  ASSERT_TRUE(verifier.ok());
  EXPECT_EQ((*verifier)->key_id(), (*signer)->key_id());
  EXPECT_EQ((*signer)->key_id().size(), 64u);

  const absl::Time t = absl::FromUnixNanos(1714550000123456789);
  auto head = (*signer)->Sign(42, LeafHash("x"), t);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->timestamp().nanos(), 123000000);  // whole milliseconds
  EXPECT_EQ(head->signature().size(), 64u);
  EXPECT_TRUE((*verifier)->Verify(*head).ok());

  auto tampered = *head;
  tampered.set_tree_size(43);
  EXPECT_THAT((*verifier)->Verify(tampered),
              ::testing::Property(&absl::Status::message,
                                  HasSubstr("signature invalid")));
  tampered = *head;
  tampered.mutable_timestamp()->set_seconds(head->timestamp().seconds() + 1);
  EXPECT_EQ((*verifier)->Verify(tampered).code(),
            absl::StatusCode::kPermissionDenied);
  tampered = *head;
  tampered.mutable_root_hash()->at(0) ^= 1;
  EXPECT_EQ((*verifier)->Verify(tampered).code(),
            absl::StatusCode::kPermissionDenied);

  auto other_pem = GenerateTreeHeadKeyPem();
  auto other = TreeHeadSigner::FromPrivateKeyPem(*other_pem);
  ASSERT_TRUE(other.ok());
  auto foreign = (*other)->Sign(42, LeafHash("x"), t);
  ASSERT_TRUE(foreign.ok());
  const absl::Status s = (*verifier)->Verify(*foreign);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("tree head signature invalid for key ",
                                     (*verifier)->key_id())));
  EXPECT_THAT(s.message(), HasSubstr((*other)->key_id()));
  // Relabelling the foreign head with our key id does not help.
  foreign->set_key_id((*verifier)->key_id());
  EXPECT_EQ((*verifier)->Verify(*foreign).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(TreeHeadTest, KeyFileMustBePrivate) {
  auto pem = GenerateTreeHeadKeyPem();
  ASSERT_TRUE(pem.ok());
  const std::string open = WriteFile("open_key.pem", *pem, 0644);
  auto refused = TreeHeadSigner::FromKeyFile(open);
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("open_key.pem"));
  const std::string closed = WriteFile("closed_key.pem", *pem, 0600);
  EXPECT_TRUE(TreeHeadSigner::FromKeyFile(closed).ok());
  const std::string garbage = WriteFile("garbage_key.pem", "not a key", 0600);
  EXPECT_THAT(TreeHeadSigner::FromKeyFile(garbage).status().message(),
              HasSubstr("not a PEM private key"));
}

TEST(TreeHeadTest, DeterministicKeysFromSeed) {
  auto a = TreeHeadKeyPemFromSeed(std::string(32, '\x07'));
  auto b = TreeHeadKeyPemFromSeed(std::string(32, '\x07'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(TreeHeadKeyPemFromSeed("short").ok());
}

}  // namespace
}  // namespace accord::audit
