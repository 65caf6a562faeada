// An in-memory AuditLog whose durability the test controls, for tests of
// the code that appends (the gateway's pipeline, the refusal log). Keeps
// entries only: proofs, tree heads and exports are not kept. Test-only;
// thread-safe.
#ifndef ACCORD_AUDIT_MEMORY_AUDIT_LOG_H_
#define ACCORD_AUDIT_MEMORY_AUDIT_LOG_H_

#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audit/audit_log.h"

namespace accord::audit::testing {

// Appends are kept in memory. By default each is durable at once (its
// callback runs on the appending thread); Hold() keeps callbacks until
// Commit(); FailNext() makes the next appends fail as a full disk would.
class MemoryAuditLog final : public AuditLog {
 public:
  void Append(accord::v1::AuditEntry entry,
              DurableCallback on_durable) override {
    DurableCallback run;
    absl::StatusOr<uint64_t> result;
    {
      absl::MutexLock lock(&mu_);
      if (fail_next_ > 0) {
        --fail_next_;
        result = absl::ResourceExhaustedError("database or disk is full");
      } else {
        entry.set_seq(entries_.size());
        result = entry.seq();
        entries_.push_back(std::move(entry));
      }
      if (held_) {
        pending_.push_back({std::move(on_durable), result});
        return;
      }
      run = std::move(on_durable);
    }
    run(result);
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  // Makes every held append durable and stops holding.
  void Commit() {
    std::deque<Pending> pending;
    {
      absl::MutexLock lock(&mu_);
      held_ = false;
      pending.swap(pending_);
    }
    for (auto& p : pending) p.callback(p.result);
  }
  size_t held() const {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
  }
  std::vector<accord::v1::AuditEntry> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  // Entries of `method` (all when empty).
  std::vector<accord::v1::AuditEntry> EntriesOf(const std::string& method) const {
    std::vector<accord::v1::AuditEntry> out;
    for (auto& e : entries()) {
      if (method.empty() || e.method() == method) out.push_back(e);
    }
    return out;
  }

  absl::StatusOr<accord::v1::SignedTreeHead> LatestTreeHead() override {
    return Unsupported();
  }
  absl::StatusOr<accord::v1::SignedTreeHead> SignTreeHeadNow() override {
    return Unsupported();
  }
  absl::StatusOr<accord::v1::SignedTreeHead> TreeHeadAt(uint64_t) override {
    return Unsupported();
  }
  absl::StatusOr<accord::v1::AuditEntry> GetEntry(uint64_t seq) override {
    absl::MutexLock lock(&mu_);
    if (seq >= entries_.size()) return absl::NotFoundError("no such entry");
    return entries_[seq];
  }
  absl::StatusOr<std::string> GetLeaf(uint64_t) override {
    return Unsupported();
  }
  absl::StatusOr<EntryPage> Search(const AuditQuery& q,
                                          const PageRequest&) override {
    EntryPage page;
    for (auto& e : entries()) {
      if (!q.caller_org.empty() && e.caller_org() != q.caller_org) continue;
      if (q.decision != accord::v1::AUDIT_DECISION_UNSPECIFIED &&
          e.decision() != q.decision)
        continue;
      page.entries.push_back(e);
    }
    return page;
  }
  absl::StatusOr<EntryPage> SubjectAccess(
      const std::vector<accord::v1::SubjectToken>&,
      const PageRequest&) override {
    return Unsupported();
  }
  absl::StatusOr<EntryPage> ReviewQueue(
      const PageRequest&) override {
    return Unsupported();
  }
  void MarkReviewed(uint64_t, const Reviewer&, std::string,
                    DurableCallback on_durable) override {
    on_durable(Unsupported());
  }
  absl::StatusOr<accord::v1::InclusionProof> InclusionProof(uint64_t,
                                                            uint64_t) override {
    return Unsupported();
  }
  absl::StatusOr<accord::v1::ConsistencyProof> ConsistencyProof(
      uint64_t, uint64_t) override {
    return Unsupported();
  }
  absl::Status Export(uint64_t, uint64_t, ExportFormat,
                      const ExportSink&) override {
    return Unsupported();
  }
  uint64_t Size() override {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }

 private:
  struct Pending {
    DurableCallback callback;
    absl::StatusOr<uint64_t> result;
  };
  static absl::Status Unsupported() {
    return absl::UnimplementedError("not kept by the in-memory log");
  }

  mutable absl::Mutex mu_;
  std::vector<accord::v1::AuditEntry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace accord::audit::testing

#endif  // ACCORD_AUDIT_MEMORY_AUDIT_LOG_H_
