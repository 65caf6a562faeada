// GoogleTest-side helpers for the integration tests (the harness itself does
// not depend on GoogleTest).
#ifndef ACCORD_TESTS_CHECKED_H_
#define ACCORD_TESTS_CHECKED_H_

#include <gtest/gtest.h>

#include <vector>

#include "absl/status/statusor.h"
#include "accord/v1/audit.pb.h"

namespace accord::testing {

// The audit entries, or none and a test failure naming the error (so that a
// test looking for the absence of something cannot pass on a failed read).
inline std::vector<accord::v1::AuditEntry> CheckedAudit(
    absl::StatusOr<std::vector<accord::v1::AuditEntry>> entries) {
  EXPECT_TRUE(entries.ok()) << entries.status();
  if (!entries.ok()) return {};
  return *std::move(entries);
}

}  // namespace accord::testing

#endif  // ACCORD_TESTS_CHECKED_H_
