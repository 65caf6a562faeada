// The gateway's watch on free space in its state directory.
//
// The audit log fails closed: when it cannot commit, nothing is released.
// A full disk would therefore stop all sharing, and a refused flood must not
// be able to get it there. DiskFloor keeps a configured amount of space in
// reserve: below it the gateway refuses new work with UNAVAILABLE saying so,
// before the log can no longer commit, and says so once in the process log
// (and again when space returns).
//
// Thread-safe; Check() reads free space at most once per `check_every`.
#ifndef ACCORD_GATEWAY_DISK_FLOOR_H_
#define ACCORD_GATEWAY_DISK_FLOOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/clock.h"

namespace accord::gateway {

struct DiskFloorOptions {
  // The state directory (where the audit log lives); empty: no check.
  std::string path;
  // Refuse new work when less than this is free; 0: no check.
  uint64_t min_free_bytes = uint64_t{256} << 20;
  absl::Duration check_every = absl::Seconds(1);
  // How free space is read (statvfs by default); tests inject their own.
  std::function<absl::StatusOr<uint64_t>(const std::string& path)> free_bytes;
};

// Free bytes available to an unprivileged writer on the file system of
// `path`.
absl::StatusOr<uint64_t> FreeBytes(const std::string& path);

class DiskFloor {
 public:
  DiskFloor(DiskFloorOptions options, const Clock* clock);

  // OK while at least the floor is free (or free space cannot be read: the
  // audit log itself then decides); UNAVAILABLE naming the floor otherwise.
  absl::Status Check() const;

  // The last reading (UINT64_MAX before any or when there is no check).
  uint64_t last_free_bytes() const { return free_.load(); }
  bool below_floor() const { return below_.load(); }

 private:
  const DiskFloorOptions options_;
  const Clock* clock_;
  mutable std::atomic<int64_t> next_check_ns_{0};
  mutable std::atomic<uint64_t> free_{UINT64_MAX};
  mutable std::atomic<bool> below_{false};
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_DISK_FLOOR_H_
