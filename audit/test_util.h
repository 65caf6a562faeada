// Test helpers for audit/: a temp-dir SQLite log with a fake clock and a
// deterministic signing key. Test-only; not thread-safe.
#ifndef ACCORD_AUDIT_TEST_UTIL_H_
#define ACCORD_AUDIT_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "audit/sqlite_audit_log.h"
#include "audit/tree_head.h"
#include "runtime/clock.h"

namespace accord::audit::testing {

inline std::shared_ptr<const TreeHeadSigner> TestSigner(char seed = 1) {
  auto pem = TreeHeadKeyPemFromSeed(std::string(32, seed));
  EXPECT_TRUE(pem.ok());
  auto signer = TreeHeadSigner::FromPrivateKeyPem(*pem);
  EXPECT_TRUE(signer.ok());
  return std::shared_ptr<const TreeHeadSigner>(std::move(*signer));
}

inline std::unique_ptr<TreeHeadVerifier> VerifierFor(
    const TreeHeadSigner& signer) {
  auto v = TreeHeadVerifier::FromPublicKeyPem(signer.public_key_pem());
  EXPECT_TRUE(v.ok());
  return std::move(*v);
}

inline std::string TempDbPath(const std::string& name) {
  // Parameterised test names contain '/'.
  const std::string path = absl::StrCat(::testing::TempDir(), "/audit_",
                                        absl::StrReplaceAll(name, {{"/", "_"}}),
                                        "_", getpid(), ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove(absl::StrCat(path, suffix).c_str());
  }
  return path;
}

inline accord::v1::AuditEntry QueryEntry(const std::string& org,
                                         const std::string& user,
                                         const std::string& purpose,
                                         const std::string& token = "") {
  accord::v1::AuditEntry e;
  e.set_request_id(absl::StrCat("req-", org, "-", user));
  e.set_caller(absl::StrCat("spiffe://test/org/", org));
  e.set_caller_org(org);
  e.mutable_actor()->set_user_id(user);
  e.mutable_actor()->set_role("practitioner");
  e.set_method("Query");
  e.set_action(accord::v1::ACTION_QUERY);
  e.set_purpose(purpose);
  e.set_agreement_id("isa-1");
  e.set_agreement_version(1);
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  if (!token.empty()) {
    auto* t = e.add_subjects();
    t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
    t->set_value(token);
  }
  e.add_fields_released("dob");
  return e;
}

}  // namespace accord::audit::testing

#endif  // ACCORD_AUDIT_TEST_UTIL_H_
