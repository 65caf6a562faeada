// Time as an injected dependency, so that agreement validity, consent expiry
// and audit timestamps are deterministic in tests.
//
// SystemClock is thread-safe. FakeClock is thread-safe too: tests may advance
// it while servers read it.
#ifndef ACCORD_RUNTIME_CLOCK_H_
#define ACCORD_RUNTIME_CLOCK_H_

#include <google/protobuf/timestamp.pb.h>

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace accord {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start) : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Set(absl::Time t) { nanos_.store(absl::ToUnixNanos(t)); }
  void Advance(absl::Duration d) {
    nanos_.fetch_add(absl::ToInt64Nanoseconds(d));
  }

 private:
  std::atomic<int64_t> nanos_;
};

// Conversions between absl::Time and google.protobuf.Timestamp. An unset
// Timestamp (0, 0) converts to absl::UnixEpoch().
absl::Time FromProtoTime(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp ToProtoTime(absl::Time t);

}  // namespace accord

#endif  // ACCORD_RUNTIME_CLOCK_H_
