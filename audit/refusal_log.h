// Refused calls in the audit log at a bounded cost.
//
// Every refusal is an access attempt and is accounted for, but anyone holding
// a certificate (even a revoked one) can send refused calls as fast as the
// network allows, and one entry per refusal would let them fill the state
// directory and stop the whole partnership. So a refusal is written in full
// while its budget lasts (a token bucket per key, and one across all keys);
// beyond it the refusal is counted under its key — caller identity, method
// and status code — and each key's count is written as one summary entry per
// interval (`refusals_summarised`, `summarised_since`, the last reason).
// Refusals of calls that were never admitted (no usable identity, not a
// member, over the caller's rate limit) have a tight budget: anyone who can
// reach the port can cause them. Refusals of admitted calls (a query no
// agreement permits, an invalid request) are already bounded by the caller's
// rate limit and have a generous one, so that in normal use each is written
// in full with its request's details. The
// counts add up: the refusals a log records are its full refusal entries plus
// the sum of its summaries. A process that dies loses at most one interval's
// counts, never a written entry.
//
// Thread-safe. The summary thread runs from construction until Stop() (or
// destruction), which writes what is still counted.
#ifndef ACCORD_AUDIT_REFUSAL_LOG_H_
#define ACCORD_AUDIT_REFUSAL_LOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "accord/v1/audit.pb.h"
#include "accord/v1/config.pb.h"
#include "audit/audit_log.h"
#include "runtime/clock.h"

namespace accord::audit {

struct RefusalBudget {
  struct Buckets {
    double per_key_per_second;
    double per_key_burst;
    double total_per_second;
    double total_burst;
  };
  Buckets before_admission{1, 5, 10, 100};
  Buckets after_admission{20, 100, 50, 500};
  absl::Duration summary_interval = absl::Seconds(1);
  // Keys tracked at once; refusals of further keys are counted under one
  // overflow key per method.
  size_t max_keys = 4096;

  // Defaults for unset fields. The proto's ranges are checked at load.
  static RefusalBudget FromProto(const accord::v1::RefusalAudit& proto);
};

class RefusalLog {
 public:
  // What happened to one refusal: written (its seq) or counted (nullopt).
  using Recorded = std::function<void(absl::StatusOr<std::optional<uint64_t>>)>;

  RefusalLog(AuditLog* log, const Clock* clock, RefusalBudget budget = {});
  ~RefusalLog();
  RefusalLog(const RefusalLog&) = delete;
  RefusalLog& operator=(const RefusalLog&) = delete;

  enum class Stage { kBeforeAdmission, kAfterAdmission };

  // Records the refusal `entry` (decision DENY, deny_reason set) with the
  // status code it was refused with, at `stage`. `done` runs exactly once:
  // after the entry is durable when written, at once when counted. May be
  // null.
  void Record(accord::v1::AuditEntry entry, absl::StatusCode code,
              Stage stage, Recorded done);

  // Writes a summary for every key with counted refusals (the thread does
  // this each interval).
  void Flush();
  // Flushes and stops the thread. Idempotent.
  void Stop();

  // Refusals recorded so far: written one by one, and counted (for tests and
  // metrics).
  uint64_t written() const;
  uint64_t counted() const;

 private:
  struct Bucket {
    double tokens;
    absl::Time refilled;
  };
  // caller, method, code, stage
  using Key = std::tuple<std::string, std::string, int, int>;
  struct Counted {
    Bucket bucket;
    uint64_t pending = 0;  // counted since the last summary
    absl::Time since;
    accord::v1::AuditEntry last;  // the newest counted refusal (its context)
  };

  bool Take(Bucket& b, double rate, double burst, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AuditLog* const log_;
  const Clock* const clock_;
  const RefusalBudget budget_;
  mutable absl::Mutex mu_;
  Bucket total_[2] ABSL_GUARDED_BY(mu_);  // by Stage
  std::map<Key, Counted> keys_ ABSL_GUARDED_BY(mu_);
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t counted_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification stopping_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_REFUSAL_LOG_H_
