// The writer side of the SQLite audit log: appends are queued, committed in
// batches (group commit) on the writer thread, and reported durable from the
// completion thread; tree heads are signed as entries arrive.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "audit/entry.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit::sqlite_log {

void SqliteAuditLog::CompletionLoop() {
  while (true) {
    Completion c;
    {
      absl::MutexLock l(&done_mu_);
      done_mu_.Await(absl::Condition(this, &SqliteAuditLog::CompletionsDue));
      if (done_.empty()) return;  // stopping and drained
      c = std::move(done_.front());
      done_.pop_front();
      completing_ = true;
    }
    RunCallbacks(c);
    absl::MutexLock l(&done_mu_);
    completing_ = false;
  }
}

void SqliteAuditLog::CheckpointLoop() {
  auto db = sqlite::Database::Open(options_.db_path);
  if (!db.ok())
    return;  // the writer's own WAL keeps working; only growth is unbounded
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(250));
    mu_.Unlock();
    int wal_pages = 0, copied = 0;
    sqlite3_wal_checkpoint_v2((*db)->handle(), nullptr,
                              SQLITE_CHECKPOINT_PASSIVE, &wal_pages, &copied);
    mu_.Lock();
  }
}

void SqliteAuditLog::Enqueue(Pending p) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(p));
      return;
    }
  }
  const absl::Status closed = absl::UnavailableError("audit log is closing");
  if (p.on_durable) p.on_durable(closed);
  if (p.on_head) p.on_head(closed);
}

void SqliteAuditLog::EnqueueEntry(AuditEntry entry, Pending p) {
  entry.clear_seq();
  entry.clear_time();
  p.body = EncodeLeafBody(entry);
  p.utf8 = LeafBodyIsUtf8(p.body);
  KeyRowsOf(0, entry, &p.keys);
  p.caller_org = std::move(*entry.mutable_caller_org());
  p.user_id = std::move(*entry.mutable_actor()->mutable_user_id());
  p.purpose = std::move(*entry.mutable_purpose());
  p.agreement_id = std::move(*entry.mutable_agreement_id());
  p.decision = entry.decision();
  p.flag_for_review = entry.flag_for_review();
  Enqueue(std::move(p));
}

void SqliteAuditLog::Append(AuditEntry entry, DurableCallback on_durable) {
  Pending p;
  p.on_durable = std::move(on_durable);
  EnqueueEntry(std::move(entry), std::move(p));
}

void SqliteAuditLog::MarkReviewed(uint64_t seq, const Reviewer& reviewer,
                                  std::string note,
                                  DurableCallback on_durable) {
  AuditEntry e;
  e.set_method("MarkReviewed");
  e.set_caller(reviewer.caller);
  e.set_caller_org(reviewer.caller_org);
  *e.mutable_actor() = reviewer.actor;
  e.set_request_id(reviewer.request_id);
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  e.set_reviews_seq(seq);
  e.set_review_note(std::move(note));
  e.set_agent_org(reviewer.agent_org);
  Pending p;
  p.kind = Pending::Kind::kReview;
  p.review_target = seq;
  p.on_durable = std::move(on_durable);
  EnqueueEntry(std::move(e), std::move(p));
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::SignTreeHeadNow() {
  if (std::this_thread::get_id() == writer_.get_id() ||
      std::this_thread::get_id() == completer_.get_id()) {
    // A durable callback waiting on the writer would wait on itself.
    return absl::FailedPreconditionError(
        "SignTreeHeadNow called from an audit log callback; post the work "
        "elsewhere");
  }
  absl::Notification done;
  absl::StatusOr<SignedTreeHead> result;
  Pending p;
  p.kind = Pending::Kind::kSignHead;
  p.on_head = [&](absl::StatusOr<SignedTreeHead> h) {
    result = std::move(h);
    done.Notify();
  };
  Enqueue(std::move(p));
  done.WaitForNotification();
  return result;
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::LatestTreeHead() {
  {
    absl::MutexLock l(&mu_);
    if (latest_head_.has_value()) return *latest_head_;
  }
  return SignTreeHeadNow();
}

void SqliteAuditLog::WriterLoop() {
  // Companions arriving within this gap join the batch (bounded by max_delay).
  const absl::Duration gap =
      std::max(options_.max_delay / 4, absl::Microseconds(50));
  while (true) {
    std::vector<Pending> batch;
    bool stop = false;
    {
      absl::MutexLock l(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      if (!has_work()) {
        if (range_.size() > last_head_size_) {
          const absl::Duration wait =
              last_head_real_ + options_.tree_head_interval - absl::Now();
          if (wait > absl::ZeroDuration()) {
            mu_.AwaitWithTimeout(absl::Condition(&has_work), wait);
          }
        } else {
          mu_.Await(absl::Condition(&has_work));
        }
      }
      // Wait for companions: as many as the last batch held (their callers
      // are likely to come back), woken once when they are all here, or
      // when arrivals pause for `gap`, or at max_delay.
      const size_t want = std::min(options_.max_batch, last_batch_size_);
      if (!queue_.empty() && queue_.size() < want && !stopping_ &&
          options_.max_delay > absl::ZeroDuration()) {
        const absl::Time deadline = absl::Now() + options_.max_delay;
        auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return queue_.size() >= want || stopping_;
        };
        while (true) {
          const size_t before = queue_.size();
          const absl::Duration left = deadline - absl::Now();
          if (left <= absl::ZeroDuration()) break;
          if (mu_.AwaitWithTimeout(absl::Condition(&enough),
                                   std::min(left, gap)))
            break;
          if (queue_.size() == before) break;  // arrivals paused
        }
      }
      const size_t n =
          std::min(queue_.size(), std::max<size_t>(options_.max_batch, 1));
      batch.reserve(n);
      if (n > 0) last_batch_size_ = n;
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stop = stopping_ && queue_.empty();
    }
    // Tree heads: on request, and at least every interval while entries arrive.
    std::vector<std::function<void(absl::StatusOr<SignedTreeHead>)>>
        head_requests;
    for (Pending& p : batch) {
      if (p.kind == Pending::Kind::kSignHead)
        head_requests.push_back(std::move(p.on_head));
    }
    if (!batch.empty()) ProcessBatch(std::move(batch));

    const bool due =
        range_.size() > last_head_size_ &&
        (stop || absl::Now() - last_head_real_ >= options_.tree_head_interval);
    std::optional<absl::StatusOr<SignedTreeHead>> head;
    if (due || (!head_requests.empty() && range_.size() > last_head_size_)) {
      head = SignAndStoreHead();
    } else if (!head_requests.empty()) {
      absl::MutexLock l(&mu_);
      if (latest_head_.has_value()) head = *latest_head_;
    }
    if (!head_requests.empty() && !head.has_value()) head = SignAndStoreHead();
    for (auto& cb : head_requests) cb(*head);
    if (stop) return;
  }
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::SignAndStoreHead() {
  auto head =
      signer_->Sign(range_.size(), range_.Root(), options_.clock->Now());
  if (!head.ok()) return head.status();
  Statement& ins = *insert_head_;
  ins.Bind(1, static_cast<int64_t>(head->tree_size()))
      .Bind(2, absl::ToUnixMillis(FromProtoTime(head->timestamp())))
      .BindBlob(3, head->root_hash())
      .BindBlob(4, head->signature())
      .Bind(5, head->key_id());
  if (auto s = ins.Run(); !s.ok()) return s;
  last_head_size_ = head->tree_size();
  last_head_real_ = absl::Now();
  absl::MutexLock l(&mu_);
  if (!latest_head_.has_value() ||
      latest_head_->tree_size() <= head->tree_size()) {
    latest_head_ = *head;
  }
  return head;
}

absl::Status SqliteAuditLog::WriteEntry(Pending& p,
                                        absl::StatusOr<uint64_t>* result,
                                        std::set<uint64_t>* reviewed_in_batch) {
  if (!p.utf8) {
    // Refuse the entry, not the batch, and use no seq.
    *result = absl::InvalidArgumentError(
        "audit entry has a text field that is not valid UTF-8");
    return absl::OkStatus();
  }
  if (p.kind == Pending::Kind::kReview) {
    const uint64_t target = p.review_target;
    if (target >= range_.size()) {
      *result = absl::NotFoundError(
          absl::StrCat("audit entry ", target, " does not exist"));
      return absl::OkStatus();
    }
    Statement& q = *review_state_;
    q.Bind(1, static_cast<int64_t>(target));
    auto step = q.Next();
    if (!step.ok()) {
      q.Reset();
      return step.status();
    }
    const bool found = *step == Step::kRow;
    const bool flagged = found && q.Int(0) != 0;
    const bool reviewed = found && !q.IsNull(1);
    const int64_t reviewed_by = reviewed ? q.Int(1) : -1;
    q.Reset();
    if (!found) {
      *result = absl::NotFoundError(
          absl::StrCat("audit entry ", target, " does not exist"));
      return absl::OkStatus();
    }
    if (!flagged) {
      *result = absl::FailedPreconditionError(
          absl::StrCat("audit entry ", target, " was not flagged for review"));
      return absl::OkStatus();
    }
    if (reviewed || reviewed_in_batch->count(target)) {
      *result = absl::FailedPreconditionError(absl::StrCat(
          "audit entry ", target, " was already reviewed",
          reviewed
              ? absl::StrCat(" (review recorded in entry ", reviewed_by, ")")
              : ""));
      return absl::OkStatus();
    }
  }
  const uint64_t seq = range_.size();
  const absl::Time now = options_.clock->Now();
  std::string& leaf = leaf_;
  leaf.clear();
  AppendLeaf(seq, ToProtoTime(now), p.body, &leaf);
  Statement& ins = *insert_entry_;
  ins.Bind(1, static_cast<int64_t>(seq))
      .Bind(2, absl::ToUnixNanos(now))
      .Bind(3, p.caller_org)
      .Bind(4, p.user_id)
      .Bind(5, p.purpose)
      .Bind(6, p.agreement_id)
      .Bind(7, p.decision)
      .Bind(8, int64_t{p.flag_for_review ? 1 : 0})
      .BindBlob(9, leaf);
  if (auto s = ins.Run(); !s.ok()) return s;
  for (KeyRow& k : p.keys) {
    k.seq = seq;
    unindexed_.push_back(std::move(k));
  }
  if (p.kind == Pending::Kind::kReview) {
    set_reviewed_->Bind(1, static_cast<int64_t>(seq))
        .Bind(2, static_cast<int64_t>(p.review_target));
    if (auto s = set_reviewed_->Run(); !s.ok()) return s;
    reviewed_in_batch->insert(p.review_target);
  }
  range_.Append(LeafHash(leaf),
                [this](int level, uint64_t index, const Hash& h) {
                  tiles_->Add(level, index, h);
                });
  *result = seq;
  return absl::OkStatus();
}

void SqliteAuditLog::ProcessBatch(std::vector<Pending> batch) {
  std::vector<absl::StatusOr<uint64_t>> results(
      batch.size(), absl::InternalError("not written"));
  const CompactRange saved = range_;
  const size_t rows_before = unindexed_.size();
  bool index_written = false;
  absl::Status status = sqlite::InTransaction(*wdb_, [&]() -> absl::Status {
    std::set<uint64_t> reviewed_in_batch;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == Pending::Kind::kSignHead) continue;
      if (auto s = WriteEntry(batch[i], &results[i], &reviewed_in_batch);
          !s.ok())
        return s;
    }
    if (range_.size() - indexed_upto_ >= options_.index_batch) {
      if (auto s = WriteKeyIndex(); !s.ok()) return s;
      index_written = true;
    }
    return tiles_->Flush();
  });
  if (status.ok()) PublishTail(rows_before, index_written);
  if (status.ok() && index_written) {
    unindexed_.clear();
    indexed_upto_ = range_.size();
  }
  if (!status.ok()) {
    // Drop the rolled-back entries' key rows (WriteKeyIndex may have sorted
    // them among the others).
    unindexed_.erase(
        std::remove_if(unindexed_.begin(), unindexed_.end(),
                       [&](const KeyRow& r) { return r.seq >= saved.size(); }),
        unindexed_.end());
    range_ = saved;
    tiles_->Discard();
    const absl::Status failed(
        status.code(),
        absl::StrCat("audit log commit failed: ", status.message()));
    for (auto& r : results) {
      if (r.ok()) r = failed;
    }
  }
  durable_size_.store(range_.size());
  Completion c;
  c.batch = std::move(batch);
  c.results = std::move(results);
  {
    absl::MutexLock l(&done_mu_);
    if (c.batch.size() > kInlineCallbacks || !done_.empty() || completing_) {
      done_.push_back(std::move(c));
      return;
    }
  }
  // A small batch with nothing ahead of it: its callbacks run here, saving
  // the lone request a wake-up of the completion thread.
  RunCallbacks(c);
}

}  // namespace accord::audit::sqlite_log
