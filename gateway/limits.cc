#include "gateway/limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace accord::gateway {

LimitOptions LimitOptions::FromProto(const accord::v1::RateLimit& proto) {
  LimitOptions o;
  o.requests_per_second = proto.requests_per_second();
  o.burst = proto.burst();
  o.max_in_flight = proto.max_in_flight();
  return o;
}

OrgLimits::Permit& OrgLimits::Permit::operator=(Permit&& o) noexcept {
  if (this != &o) {
    Release();
    state_ = std::move(o.state_);
    org_ = std::move(o.org_);
  }
  return *this;
}

void OrgLimits::Permit::Release() {
  if (state_ != nullptr) state_->Release(org_);
  state_.reset();
}

OrgLimits::OrgLimits(LimitOptions options, const Clock* clock)
    : options_(options), clock_(clock) {}

absl::StatusOr<OrgLimits::Permit> OrgLimits::Admit(const std::string& org) {
  const double rate = options_.requests_per_second;
  const double burst =
      options_.burst > 0 ? options_.burst : std::max(1.0, rate);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&state_->mu);
  auto [it, inserted] = state_->buckets.try_emplace(org);
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = burst;
    b.refilled = now;
  }
  if (options_.max_in_flight > 0 && b.in_flight >= options_.max_in_flight) {
    return absl::ResourceExhaustedError(
        absl::StrCat("organisation '", org, "' already has ", b.in_flight,
                     " calls in flight (limit ", options_.max_in_flight,
                     "); retry when they finish"));
  }
  if (rate > 0) {
    const double elapsed = absl::ToDoubleSeconds(now - b.refilled);
    if (elapsed > 0) {
      b.tokens = std::min(burst, b.tokens + elapsed * rate);
      b.refilled = now;
    }
    if (b.tokens < 1) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "organisation '", org, "' exceeded its rate limit of ", rate,
          " calls per second (burst ", burst, "); slow down and retry"));
    }
    b.tokens -= 1;
  }
  ++b.in_flight;
  return Permit(state_, org);
}

void OrgLimits::State::Release(const std::string& org) {
  absl::MutexLock lock(&mu);
  auto it = buckets.find(org);
  if (it != buckets.end() && it->second.in_flight > 0) --it->second.in_flight;
}

uint32_t OrgLimits::InFlight(const std::string& org) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->buckets.find(org);
  return it == state_->buckets.end() ? 0 : it->second.in_flight;
}

}  // namespace accord::gateway
