#include "audit/refusal_log.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"

namespace accord::audit {
namespace {

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// What a summary keeps of the refusals it stands for: who, which method, and
// the last reason; not the request's own details (tokens, ids), which differ
// from one refusal to the next.
accord::v1::AuditEntry Context(const accord::v1::AuditEntry& e) {
  accord::v1::AuditEntry c;
  c.set_caller(e.caller());
  c.set_caller_org(e.caller_org());
  *c.mutable_actor() = e.actor();
  c.set_method(e.method());
  c.set_action(e.action());
  c.set_decision(accord::v1::AUDIT_DECISION_DENY);
  c.set_deny_reason(e.deny_reason());
  return c;
}

}  // namespace

RefusalBudget RefusalBudget::FromProto(const accord::v1::RefusalAudit& proto) {
  RefusalBudget b;
  auto set = [](double v, double* out) {
    if (v > 0) *out = v;
  };
  set(proto.per_key_per_second(), &b.before_admission.per_key_per_second);
  set(proto.per_key_burst(), &b.before_admission.per_key_burst);
  set(proto.total_per_second(), &b.before_admission.total_per_second);
  set(proto.total_burst(), &b.before_admission.total_burst);
  set(proto.admitted_per_key_per_second(),
      &b.after_admission.per_key_per_second);
  set(proto.admitted_per_key_burst(), &b.after_admission.per_key_burst);
  set(proto.admitted_total_per_second(), &b.after_admission.total_per_second);
  set(proto.admitted_total_burst(), &b.after_admission.total_burst);
  if (proto.has_summary_interval())
    b.summary_interval = FromProtoDuration(proto.summary_interval());
  return b;
}

RefusalLog::RefusalLog(AuditLog* log, const Clock* clock, RefusalBudget budget)
    : log_(log), clock_(clock), budget_(budget) {
  total_[0] = Bucket{budget_.before_admission.total_burst, clock_->Now()};
  total_[1] = Bucket{budget_.after_admission.total_burst, clock_->Now()};
  thread_ = std::thread([this] {
    while (!stopping_.WaitForNotificationWithTimeout(budget_.summary_interval))
      Flush();
  });
}

RefusalLog::~RefusalLog() { Stop(); }

void RefusalLog::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.Notify();
  if (thread_.joinable()) thread_.join();
  Flush();
}

bool RefusalLog::Take(Bucket& b, double rate, double burst, absl::Time now) {
  b.tokens = std::min(
      burst, b.tokens + absl::ToDoubleSeconds(now - b.refilled) * rate);
  b.refilled = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void RefusalLog::Record(accord::v1::AuditEntry entry, absl::StatusCode code,
                        Stage stage, Recorded done) {
  const int stage_index = stage == Stage::kBeforeAdmission ? 0 : 1;
  const RefusalBudget::Buckets& b = stage_index == 0
                                        ? budget_.before_admission
                                        : budget_.after_admission;
  entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
  bool write = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    Key key{entry.caller(), entry.method(), static_cast<int>(code),
            stage_index};
    auto it = keys_.find(key);
    if (it == keys_.end()) {
      if (keys_.size() >= budget_.max_keys) {
        std::get<0>(key) = "(other callers)";
        it = keys_.find(key);
      }
      if (it == keys_.end()) {
        it = keys_
                 .emplace(key, Counted{Bucket{b.per_key_burst, now}, 0, now,
                                       {}})
                 .first;
      }
    }
    Counted& c = it->second;
    write = Take(c.bucket, b.per_key_per_second, b.per_key_burst, now) &&
            Take(total_[stage_index], b.total_per_second, b.total_burst, now);
    if (!write) {
      if (c.pending == 0) c.since = now;
      ++c.pending;
      ++counted_;
      c.last = Context(entry);
      if (std::get<0>(key) != entry.caller()) c.last.set_caller(std::get<0>(key));
    } else {
      ++written_;
    }
  }
  if (!write) {
    if (done) done(std::optional<uint64_t>());
    return;
  }
  log_->Append(std::move(entry),
               [done = std::move(done)](absl::StatusOr<uint64_t> seq) {
                 if (!done) return;
                 if (!seq.ok()) return done(seq.status());
                 done(std::optional<uint64_t>(*seq));
               });
}

void RefusalLog::Flush() {
  std::vector<accord::v1::AuditEntry> summaries;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    for (auto it = keys_.begin(); it != keys_.end();) {
      Counted& c = it->second;
      if (c.pending > 0) {
        accord::v1::AuditEntry e = std::move(c.last);
        e.set_refusals_summarised(c.pending);
        *e.mutable_summarised_since() = ToProtoTime(c.since);
        e.set_detail(absl::StrCat(c.pending, " refusals of ", e.method(),
                                  " not written one by one (",
                                  absl::StatusCodeToString(static_cast<absl::StatusCode>(
                                      std::get<2>(it->first))),
                                  ")"));
        summaries.push_back(std::move(e));
        c.pending = 0;
        c.last.Clear();
        ++it;
        continue;
      }
      // A key whose bucket has refilled is forgotten: it would start full.
      const RefusalBudget::Buckets& b = std::get<3>(it->first) == 0
                                            ? budget_.before_admission
                                            : budget_.after_admission;
      const double refill =
          absl::ToDoubleSeconds(now - c.bucket.refilled) * b.per_key_per_second;
      if (c.bucket.tokens + refill >= b.per_key_burst) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : summaries) {
    log_->Append(std::move(e), [](absl::StatusOr<uint64_t> seq) {
      if (!seq.ok()) {
        std::fprintf(stderr, "audit: a summary of refused calls was not "
                     "recorded: %s\n", std::string(seq.status().message()).c_str());
      }
    });
  }
}

uint64_t RefusalLog::written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

uint64_t RefusalLog::counted() const {
  absl::MutexLock lock(&mu_);
  return counted_;
}

}  // namespace accord::audit
