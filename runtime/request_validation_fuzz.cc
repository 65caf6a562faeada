// libFuzzer target: request validation. The first byte picks the request
// type of one RPC of any Accord service (gateway, auditor, holder, agent
// local API); the rest is parsed as that message's wire bytes, exactly as a
// server would receive them, and validated. Must never crash, hang or leak,
// and a message that passes must still pass after a round trip.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "accord/v1/agent.pb.h"
#include "accord/v1/gateway.pb.h"
#include "runtime/textproto.h"

namespace {

using google::protobuf::Descriptor;

const std::vector<const Descriptor*>& RequestTypes() {
  static const auto* types = [] {
    auto* out = new std::vector<const Descriptor*>;
    const auto* pool = accord::v1::QueryRequest::descriptor()->file()->pool();
    (void)accord::v1::DiscloseRequest::descriptor();  // links agent.proto
    for (const char* name : {"accord.v1.Gateway", "accord.v1.Auditor",
                             "accord.v1.Holder", "accord.v1.AgentLocal"}) {
      const auto* service = pool->FindServiceByName(name);
      if (service == nullptr) std::abort();
      for (int i = 0; i < service->method_count(); ++i)
        out->push_back(service->method(i)->input_type());
    }
    return out;
  }();
  return *types;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& types = RequestTypes();
  const Descriptor* type = types[data[0] % types.size()];
  std::unique_ptr<google::protobuf::Message> msg(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(type)
          ->New());
  if (!msg->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  const absl::Status status = accord::ValidateMessage(*msg);
  if (status.ok()) {
    std::unique_ptr<google::protobuf::Message> copy(msg->New());
    if (!copy->ParseFromString(msg->SerializeAsString())) std::abort();
    if (!accord::ValidateMessage(*copy).ok()) std::abort();
  } else if (status.code() != absl::StatusCode::kInvalidArgument ||
             status.message().find("field ") == absl::string_view::npos) {
    std::abort();  // every refusal names the field at fault
  }
  return 0;
}
