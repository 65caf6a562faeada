#include "gateway/disk_floor.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace accord::gateway {

absl::StatusOr<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot read free space of ", path, ": ",
                     std::strerror(errno)));
  }
  return uint64_t{st.f_bavail} * uint64_t{st.f_frsize};
}

DiskFloor::DiskFloor(DiskFloorOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

absl::Status DiskFloor::Check() const {
  if (options_.path.empty() || options_.min_free_bytes == 0)
    return absl::OkStatus();
  const int64_t now = absl::ToUnixNanos(clock_->Now());
  int64_t due = next_check_ns_.load(std::memory_order_relaxed);
  if (now >= due &&
      next_check_ns_.compare_exchange_strong(
          due, now + absl::ToInt64Nanoseconds(options_.check_every))) {
    auto free = options_.free_bytes ? options_.free_bytes(options_.path)
                                    : FreeBytes(options_.path);
    if (free.ok()) {
      free_.store(*free);
      const bool below = *free < options_.min_free_bytes;
      if (below_.exchange(below) != below) {
        if (below) {
          std::fprintf(stderr,
                       "accord-gateway: state directory %s has %llu MiB free, "
                       "below the floor of %llu MiB: new work is refused "
                       "until space is freed\n",
                       options_.path.c_str(),
                       static_cast<unsigned long long>(*free >> 20),
                       static_cast<unsigned long long>(
                           options_.min_free_bytes >> 20));
        } else {
          std::fprintf(stderr,
                       "accord-gateway: state directory %s has %llu MiB free "
                       "again: accepting work\n",
                       options_.path.c_str(),
                       static_cast<unsigned long long>(*free >> 20));
        }
      }
    }
  }
  if (!below_.load()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "the gateway is short of disk space for its audit log (less than ",
      options_.min_free_bytes >> 20,
      " MiB free); new work is refused until its operator frees space"));
}

}  // namespace accord::gateway
