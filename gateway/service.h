// The gateway's gRPC services: thin callback-API adapters over Gateway.
// Each handler builds the Caller from the TLS peer, hands the request to the
// logic, and finishes the reactor when the logic calls back. No per-request
// threads, no blocking in handlers.
#ifndef ACCORD_GATEWAY_SERVICE_H_
#define ACCORD_GATEWAY_SERVICE_H_

#include "accord/v1/gateway.grpc.pb.h"
#include "gateway/gateway.h"

namespace accord::gateway {

class GatewayService final : public accord::v1::Gateway::CallbackService {
 public:
  explicit GatewayService(Gateway* gateway) : gateway_(gateway) {}

  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx,
                                  const accord::v1::QueryRequest* request,
                                  accord::v1::QueryResponse* response) override;
  grpc::ServerUnaryReactor* ListAgreements(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ListAgreementsRequest* request,
      accord::v1::ListAgreementsResponse* response) override;

 private:
  Gateway* gateway_;
};

// The transport's view of the caller.
Caller CallerFromContext(const grpc::CallbackServerContext& ctx,
                         const std::string& partnership);

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_SERVICE_H_
