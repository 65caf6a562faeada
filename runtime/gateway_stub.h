// A stub of the gateway's API (accord.v1.Gateway) that starts each call on a
// ServerChannel's current channel (runtime/server_channel.h), for code that
// keeps one stub for the life of the process, such as an agent's referrals:
// every call still goes through the server-certificate checks there and
// follows CRL reloads.
//
// Every method of the Gateway service is forwarded (synchronous, callback
// and completion-queue forms); a method added to the service must be added
// to the list in gateway_stub.cc, which does not compile until it is.
// Thread-safe.
#ifndef ACCORD_RUNTIME_GATEWAY_STUB_H_
#define ACCORD_RUNTIME_GATEWAY_STUB_H_

#include <memory>

#include "absl/status/statusor.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "runtime/server_channel.h"

namespace accord {

std::unique_ptr<accord::v1::Gateway::StubInterface> MakeGatewayStub(
    std::unique_ptr<ServerChannel> channel);

// Opens a ServerChannel to the gateway at `options.address`, insisting on
// spiffe://<partnership_id>/gateway (options.expected_identity and
// server_name are set here), and returns its stub.
absl::StatusOr<std::unique_ptr<accord::v1::Gateway::StubInterface>>
DialGateway(ServerChannelOptions options, const std::string& partnership_id);

}  // namespace accord

#endif  // ACCORD_RUNTIME_GATEWAY_STUB_H_
