// libFuzzer target: configuration loading. The first byte picks the schema
// (gateway config, agent config, partnership); the rest is parsed as a
// text-format file and validated. Must never crash, hang or leak, and every
// refusal must name the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "accord/v1/config.pb.h"
#include "runtime/textproto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  accord::v1::GatewayConfig gateway;
  accord::v1::AgentConfig agent;
  accord::v1::Partnership partnership;
  google::protobuf::Message* msg = nullptr;
  switch (data[0] % 3) {
    case 0:
      msg = &gateway;
      break;
    case 1:
      msg = &agent;
      break;
    default:
      msg = &partnership;
      break;
  }
  const absl::Status status =
      accord::ParseTextProto(text, "fuzz.textproto", msg);
  if (!status.ok() &&
      (status.code() != absl::StatusCode::kInvalidArgument ||
       status.message().find("fuzz.textproto") == absl::string_view::npos)) {
    std::abort();
  }
  if (status.ok() && !accord::ValidateMessage(*msg).ok()) std::abort();
  return 0;
}
