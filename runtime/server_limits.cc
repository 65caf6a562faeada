#include "runtime/server_limits.h"

#include "absl/strings/str_cat.h"

namespace accord {
namespace {

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Checks server_limits.<field> of `config_path`; 0 (unset) keeps the default.
class LimitReader {
 public:
  explicit LimitReader(absl::string_view config_path)
      : config_path_(config_path) {}

  template <typename T>
  void Count(absl::string_view field, uint32_t value, uint32_t min,
             uint32_t max, absl::string_view unit, T* out) {
    if (value == 0) return;
    if (value < min || value > max) {
      Fail(field, absl::StrCat(value, unit),
           absl::StrCat(min, "..", max, unit));
      return;
    }
    *out = static_cast<T>(value);
  }

  // `allow_zero`: 0 is accepted and means "no limit" (InfiniteDuration).
  void Span(absl::string_view field, bool has,
            const google::protobuf::Duration& d, absl::Duration min,
            absl::Duration max, bool allow_zero, absl::Duration* out) {
    if (!has) return;
    const absl::Duration v = FromProtoDuration(d);
    if (allow_zero && v == absl::ZeroDuration()) {
      *out = absl::InfiniteDuration();
      return;
    }
    if (v < min || v > max) {
      Fail(field, absl::FormatDuration(v),
           absl::StrCat(allow_zero ? "0 or " : "", absl::FormatDuration(min),
                        "..", absl::FormatDuration(max)));
      return;
    }
    *out = v;
  }

  absl::Status status() const { return status_; }

 private:
  void Fail(absl::string_view field, absl::string_view value,
            absl::string_view range) {
    if (!status_.ok()) return;
    status_ = absl::InvalidArgumentError(
        absl::StrCat(config_path_, ": field server_limits.", field, ": ", value,
                     " is outside the allowed range ", range));
  }

  const std::string config_path_;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<ServerLimits> ServerLimits::FromProto(
    const accord::v1::ServerLimits& proto, absl::string_view config_path) {
  ServerLimits out;
  LimitReader r(config_path);
  uint64_t memory_mb = out.max_memory_bytes >> 20;
  r.Count("max_memory_mb", proto.max_memory_mb(), 64, 65536, " MiB",
          &memory_mb);
  out.max_memory_bytes = memory_mb << 20;
  r.Count("max_concurrent_streams", proto.max_concurrent_streams(), 1, 1000, "",
          &out.max_concurrent_streams);
  r.Count("stream_reset_burst", proto.stream_reset_burst(), 10, 100000, "",
          &out.stream_reset_burst);
  r.Count("stream_resets_per_second", proto.stream_resets_per_second(), 1,
          100000, "", &out.stream_resets_per_second);
  r.Count("max_connections_per_identity", proto.max_connections_per_identity(),
          1, 10000, "", &out.max_connections_per_identity);
  r.Span("max_connection_idle", proto.has_max_connection_idle(),
         proto.max_connection_idle(), absl::Seconds(1), absl::Hours(24),
         /*allow_zero=*/false, &out.max_connection_idle);
  r.Span("max_connection_age", proto.has_max_connection_age(),
         proto.max_connection_age(), absl::Minutes(1), absl::Hours(24 * 7),
         /*allow_zero=*/true, &out.max_connection_age);
  r.Span("max_connection_age_grace", proto.has_max_connection_age_grace(),
         proto.max_connection_age_grace(), absl::Seconds(1), absl::Hours(1),
         /*allow_zero=*/false, &out.max_connection_age_grace);
  if (!r.status().ok()) return r.status();
  return out;
}

}  // namespace accord
