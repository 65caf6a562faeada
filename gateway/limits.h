// Per-organisation admission limits at the gateway: a token-bucket rate limit
// and a cap on calls in flight, both counted separately for each calling
// organisation, so one partner's runaway system exhausts only its own
// allowance and never starves the others.
//
// A refused call gets ResourceExhausted (which the gateway audits like any
// other denial). An admitted call holds a Permit; its in-flight slot is
// returned when the Permit is destroyed, i.e. when the call has finished. A
// Permit shares the counts it returns to, so it may outlive the OrgLimits
// (a completion destroyed late on another thread, at shutdown).
//
// Thread-safe. The clock is injected so tests are deterministic.
#ifndef ACCORD_GATEWAY_LIMITS_H_
#define ACCORD_GATEWAY_LIMITS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"
#include "runtime/clock.h"

namespace accord::gateway {

struct LimitOptions {
  // Sustained calls per second per organisation; 0 disables the rate limit.
  double requests_per_second = 0;
  // Calls an idle organisation may make at once before the rate applies
  // (defaults to one second's worth when 0).
  uint32_t burst = 0;
  // Calls in flight at once per organisation; 0 disables the cap.
  uint32_t max_in_flight = 0;

  static LimitOptions FromProto(const accord::v1::RateLimit& proto);
};

class OrgLimits {
  struct State;

 public:
  // Returns an in-flight slot to its organisation when destroyed.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& o) noexcept
        : state_(std::move(o.state_)), org_(std::move(o.org_)) {}
    Permit& operator=(Permit&& o) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { Release(); }

   private:
    friend class OrgLimits;
    Permit(std::shared_ptr<State> state, std::string org)
        : state_(std::move(state)), org_(std::move(org)) {}
    void Release();
    std::shared_ptr<State> state_;
    std::string org_;
  };

  OrgLimits(LimitOptions options, const Clock* clock);

  // Admits one call from `org`, or ResourceExhausted saying which limit
  // was reached.
  absl::StatusOr<Permit> Admit(const std::string& org);

  // Calls of `org` in flight now (for tests and metrics).
  uint32_t InFlight(const std::string& org) const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time refilled;
    uint32_t in_flight = 0;
  };
  struct State {
    void Release(const std::string& org);
    mutable absl::Mutex mu;
    std::map<std::string, Bucket> buckets ABSL_GUARDED_BY(mu);
  };

  const LimitOptions options_;
  const Clock* clock_;
  const std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_LIMITS_H_
