#include "runtime/caller.h"

namespace accord {

Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const std::string& partnership,
                         const RevocationList* revocation) {
  Caller caller;
  if (auto auth = ctx.auth_context()) {
    caller.principal = PeerPrincipal(*auth, partnership);
    caller.peer_uris = PeerUris(*auth);
    if (caller.principal.ok() && revocation != nullptr) {
      if (auto s = revocation->CheckPeer(*auth); !s.ok()) caller.principal = s;
    }
  }
  caller.actor = ActorFromMetadata(ctx);
  caller.deadline = absl::FromChrono(ctx.deadline());
  return caller;
}

}  // namespace accord
