// The gateway's referral queue: referrals (routing metadata and the sealed
// payload, which the gateway cannot open) and the outgoing work on them
// (deliveries to receivers, status notifications to the parties), in SQLite.
//
// Store-and-forward: a referral accepted by the gateway is in this store
// before the sender is told SENT, and its delivery task stays until the
// receiver's agent has it. Idempotent on the referral id and on (sender,
// sender's idempotency key). Status changes are compare-and-set on the
// number of history entries, so concurrent changes cannot both apply.
// WAL with synchronous=NORMAL: a committed referral survives a crash of the
// process (SIGKILL); see docs/REFERRALS.md for power loss.
// Thread-safe: one connection behind a mutex (referrals are low volume).
#ifndef ACCORD_GATEWAY_REFERRAL_STORE_H_
#define ACCORD_GATEWAY_REFERRAL_STORE_H_

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/records.pb.h"
#include "runtime/sqlite.h"

namespace accord::gateway {

enum class TaskKind { kDeliver = 1, kNotify = 2 };

// A piece of outgoing work on a referral.
struct ReferralTask {
  int64_t id = 0;
  TaskKind kind = TaskKind::kDeliver;
  std::string referral_id;
  std::string target_org;
  int attempts = 0;
  absl::Time next_attempt;
};

class ReferralStore {
 public:
  static absl::StatusOr<std::unique_ptr<ReferralStore>> Open(
      const std::string& path);

  struct Inserted {
    accord::v1::Referral referral;
    bool created = false;
  };
  // Stores a new referral (state SENT, one history entry) and queues its
  // delivery to `referral.to_org`, in one transaction. When a referral with
  // the same id, or the same (from_org, idempotency_key), exists, returns it
  // with created = false; AlreadyExists when the id belongs to another
  // sender's referral.
  absl::StatusOr<Inserted> Insert(const accord::v1::Referral& referral,
                                  absl::Time now);

  // The referral with this id, or the sender's referral with this key.
  absl::StatusOr<std::optional<accord::v1::Referral>> Find(
      const std::string& id);
  absl::StatusOr<std::optional<accord::v1::Referral>> FindByKey(
      const std::string& from_org, const std::string& idempotency_key);

  // Appends `status` if the referral still has `expected_history` entries
  // (Aborted otherwise) and queues a notification to each of `notify`
  // (coalesced with one already pending for the same organisation). When
  // `complete_task` is non-zero that task is marked done in the same
  // transaction. Returns the referral as stored.
  absl::StatusOr<accord::v1::Referral> Apply(
      const std::string& id, int expected_history,
      const accord::v1::ReferralStatus& status,
      const std::vector<std::string>& notify, absl::Time now,
      int64_t complete_task = 0);

  // Every referral linked to `id` through previous_referral_id, from the
  // first to the last, `id` included.
  absl::StatusOr<std::vector<accord::v1::Referral>> Chain(
      const std::string& id);

  // Pending tasks due at `now`, oldest first, skipping `busy` ones.
  absl::StatusOr<std::vector<ReferralTask>> DueTasks(
      absl::Time now, const std::set<int64_t>& busy, int limit);
  // When the next pending task falls due; nullopt when none is pending.
  absl::StatusOr<std::optional<absl::Time>> NextDue();
  // Marks a task done; a notification only when it carried at least the
  // history entries a later change asked for (else it stays due, to carry
  // the newer state).
  absl::Status CompleteTask(int64_t task_id, int carried = INT32_MAX);
  absl::Status RetryTask(int64_t task_id, absl::Time next_attempt,
                         const std::string& last_error);
  absl::StatusOr<int64_t> PendingTaskCount();

 private:
  explicit ReferralStore(std::unique_ptr<sqlite::Database> db)
      : db_(std::move(db)) {}
  absl::StatusOr<std::optional<accord::v1::Referral>> FindLocked(
      const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status QueueLocked(TaskKind kind, const std::string& referral_id,
                           const std::string& target, absl::Time now,
                           int version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_REFERRAL_STORE_H_
