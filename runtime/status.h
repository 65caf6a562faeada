// Status conversion at the gRPC boundary.
//
// Libraries return absl::Status; gRPC handlers translate with ToGrpcStatus.
// Messages name the field or file:line at fault and never carry record values
// or secrets, so they are safe to return to callers. Thread-safe (pure).
#ifndef ACCORD_RUNTIME_STATUS_H_
#define ACCORD_RUNTIME_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace accord {

[[nodiscard]] grpc::Status ToGrpcStatus(const absl::Status& status);
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace accord

#endif  // ACCORD_RUNTIME_STATUS_H_
