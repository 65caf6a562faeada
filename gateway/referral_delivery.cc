// Referral delivery: the background loop that takes due tasks from the
// ReferralStore and calls the agents (deliveries to receivers, status changes
// to the parties), retrying with back-off and expiring what the agreement's
// delivery limit does not allow to wait longer.
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gateway/referral_router.h"
#include "gateway/referral_state.h"
#include "runtime/identity.h"

namespace accord::gateway {

using accord::v1::AuditEntry;
using accord::v1::Referral;
using accord::v1::ReferralStatus;

void ReferralRouter::Start() {
  absl::MutexLock lock(&mu_);
  if (worker_.joinable()) return;
  stopping_ = false;
  worker_ = std::thread([this] { Run(); });
}

void ReferralRouter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  // Calls in flight end within their deadline.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::set<int64_t>* busy) { return busy->empty(); }, &busy_));
}

void ReferralRouter::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

std::vector<std::string> ReferralRouter::PartiesToNotify(
    const Referral& r) const {
  std::vector<std::string> out;
  if (agents_->Knows(r.from_org())) out.push_back(r.from_org());
  bool delivered = false;
  for (const auto& h : r.history()) {
    if (h.state() == accord::v1::REFERRAL_STATE_DELIVERED) delivered = true;
  }
  if (delivered && agents_->Knows(r.to_org())) out.push_back(r.to_org());
  return out;
}

void ReferralRouter::Run() {
  while (true) {
    std::set<int64_t> busy;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      wake_ = false;
      busy = busy_;
    }
    const int room = options_.max_in_flight - static_cast<int>(busy.size());
    std::vector<ReferralTask> due;
    if (room > 0) {
      auto tasks = store_->DueTasks(clock_->Now(), busy, room);
      if (tasks.ok()) {
        due = std::move(*tasks);
      } else {
        std::fprintf(stderr, "accord-gateway: referral queue: %s\n",
                     std::string(tasks.status().message()).c_str());
      }
    }
    for (const auto& t : due) {
      {
        absl::MutexLock lock(&mu_);
        busy_.insert(t.id);
      }
      Dispatch(t);
    }
    absl::Duration wait = absl::Seconds(1);
    if (auto next = store_->NextDue(); next.ok() && next->has_value()) {
      wait = std::clamp(**next - clock_->Now(), absl::Milliseconds(10),
                        absl::Seconds(1));
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](ReferralRouter* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return self->wake_ || self->stopping_;
            },
            this),
        wait);
  }
}

void ReferralRouter::Finished(int64_t task_id) {
  absl::MutexLock lock(&mu_);
  busy_.erase(task_id);
  wake_ = true;
}

void ReferralRouter::Retry(const ReferralTask& task, const std::string& error,
                           absl::Time cap) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 0; i < task.attempts && backoff < options_.max_backoff; ++i)
    backoff *= 2;
  backoff = std::min(backoff, options_.max_backoff);
  const absl::Time next = std::min(clock_->Now() + backoff, cap);
  if (auto s = store_->RetryTask(task.id, next, error); !s.ok()) {
    std::fprintf(stderr, "accord-gateway: referral queue: %s\n",
                 std::string(s.message()).c_str());
  }
}

void ReferralRouter::AuditSystemEvent(const std::string& method,
                                      const Referral& r,
                                      const std::string& detail,
                                      const std::string& refusal) {
  AuditEntry e;
  e.set_caller(SpiffeId(partnership_->id(), PrincipalKind::kGateway));
  e.set_method(method);
  e.set_action(accord::v1::ACTION_REFERRAL);
  e.set_purpose(r.purpose());
  e.set_referral_id(r.id());
  e.set_holder(r.to_org());
  *e.mutable_subjects() = r.subjects();
  e.set_agreement_id(r.agreement_id());
  e.set_agreement_version(r.agreement_version());
  e.set_rule_id(r.rule_id());
  e.set_decision(refusal.empty() ? accord::v1::AUDIT_DECISION_ALLOW
                                 : accord::v1::AUDIT_DECISION_DENY);
  e.set_deny_reason(refusal);
  e.set_detail(detail);
  audit_->Append(std::move(e), [](absl::StatusOr<uint64_t> seq) {
    if (!seq.ok()) {
      std::fprintf(stderr, "accord-gateway: audit of a referral event: %s\n",
                   std::string(seq.status().message()).c_str());
    }
  });
}

void ReferralRouter::Dispatch(const ReferralTask& task) {
  auto found = store_->Find(task.referral_id);
  if (!found.ok() || !found->has_value()) {
    if (found.ok()) (void)store_->CompleteTask(task.id);
    return Finished(task.id);
  }
  Referral r = std::move(**found);
  if (task.kind == TaskKind::kNotify) {
    accord::v1::NotifyReferralStatusRequest req;
    const int carried = r.history_size();
    *req.mutable_referral() = std::move(r);
    agents_->NotifyReferralStatus(
        task.target_org, req, options_.call_deadline,
        [this, task, carried](absl::Status status) {
          executor_.Post([this, task, carried, status] {
            if (status.ok()) {
              (void)store_->CompleteTask(task.id, carried);
            } else {
              Retry(task, std::string(status.message()), absl::InfiniteFuture());
            }
            Finished(task.id);
          });
        });
    return;
  }
  // Delivery: only while the referral waits for it.
  if (r.state() != accord::v1::REFERRAL_STATE_SENT) {
    (void)store_->CompleteTask(task.id);
    return Finished(task.id);
  }
  if (clock_->Now() >= FromProtoTime(r.deliver_by())) {
    Expire(task, r);
    return Finished(task.id);
  }
  accord::v1::DeliverReferralRequest req;
  *req.mutable_referral() = r;
  agents_->DeliverReferral(task.target_org, req, options_.call_deadline,
                           [this, task, r = std::move(r)](absl::Status status) {
                             executor_.Post([this, task, r, status] {
                               OnDeliverResult(task, r, status);
                               Finished(task.id);
                             });
                           });
}

void ReferralRouter::OnDeliverResult(const ReferralTask& task,
                                     const Referral& r,
                                     const absl::Status& status) {
  if (!status.ok()) {
    // The first failure is recorded (the receiver's agent unreachable, or
    // refused at the handshake: a revoked or wrong certificate); the
    // referral stays queued and is retried until its limit.
    if (task.attempts == 0) {
      AuditSystemEvent("DeliverReferral", r,
                       absl::StrCat("not delivered to ", r.to_org(),
                                    "; the referral stays queued"),
                       std::string(status.message()));
    }
    return Retry(task, status.ToString(), FromProtoTime(r.deliver_by()));
  }
  ReferralStatus delivered;
  delivered.set_state(accord::v1::REFERRAL_STATE_DELIVERED);
  *delivered.mutable_at() = ToProtoTime(clock_->Now());
  Referral after = r;
  ApplyTransition(after, delivered);
  auto applied = store_->Apply(r.id(), r.history_size(), delivered,
                               PartiesToNotify(after), clock_->Now(), task.id);
  if (!applied.ok()) {
    // Withdrawn meanwhile, or the store failed: the task stays or ends as the
    // referral's state says on the next pass.
    if (applied.status().code() != absl::StatusCode::kAborted) {
      Retry(task, std::string(applied.status().message()),
            absl::InfiniteFuture());
    }
    return;
  }
  AuditSystemEvent("DeliverReferral", r,
                   absl::StrCat("delivered to ", r.to_org(), " after ",
                                task.attempts + 1, " attempt(s)"));
}

void ReferralRouter::Expire(const ReferralTask& task, const Referral& r) {
  ReferralStatus expired;
  expired.set_state(accord::v1::REFERRAL_STATE_EXPIRED);
  *expired.mutable_at() = ToProtoTime(clock_->Now());
  expired.set_reason(absl::StrCat(
      "not delivered to ", r.to_org(), " within the time limit of rule ",
      r.rule_id(), " (", task.attempts, " attempts)"));
  Referral after = r;
  ApplyTransition(after, expired);
  auto applied = store_->Apply(r.id(), r.history_size(), expired,
                               PartiesToNotify(after), clock_->Now(), task.id);
  if (applied.ok()) {
    AuditSystemEvent("ExpireReferral", r, expired.reason());
    Wake();
  }
}

}  // namespace accord::gateway
