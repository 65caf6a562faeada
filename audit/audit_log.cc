#include "audit/audit_log.h"

#include "absl/synchronization/notification.h"

namespace accord::audit {

absl::StatusOr<uint64_t> AuditLog::AppendAndWait(accord::v1::AuditEntry entry) {
  absl::Notification done;
  absl::StatusOr<uint64_t> result;
  Append(std::move(entry), [&](absl::StatusOr<uint64_t> seq) {
    result = std::move(seq);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<uint64_t> AuditLog::MarkReviewedAndWait(uint64_t seq,
                                                       const Reviewer& reviewer,
                                                       std::string note) {
  absl::Notification done;
  absl::StatusOr<uint64_t> result;
  MarkReviewed(seq, reviewer, std::move(note), [&](absl::StatusOr<uint64_t> s) {
    result = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace accord::audit
