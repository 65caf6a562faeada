// libFuzzer target: bytes a peer could present as its client certificate
// (and the rest of its chain), verified against a fixed partnership CA the
// way every Accord server does at the TLS handshake (runtime/handshake.h).
// Must never crash; whatever it accepts must be a certificate issued by that
// CA. The corpus holds certificates issued by the CA below (deploy/pki for
// partnership probe.accord) and ones that must be refused.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "runtime/handshake.h"

namespace {

constexpr char kCaPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBwjCCAWegAwIBAgIUcSrRDm6QoeJy72tGJ2ibtsxOlNwwCgYIKoZIzj0EAwIw\n"
    "PTEVMBMGA1UECgwMcHJvYmUuYWNjb3JkMSQwIgYDVQQDDBtwcm9iZS5hY2NvcmQg\n"
    "cGFydG5lcnNoaXAgQ0EwHhcNMjYxMTIzMTQzNzU5WhcNMzYxMTIwMTQzNzU5WjA9\n"
    "MRUwEwYDVQQKDAxwcm9iZS5hY2NvcmQxJDAiBgNVBAMMG3Byb2JlLmFjY29yZCBw\n"
    "YXJ0bmVyc2hpcCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJScDrEEzW3h\n"
    "J9jiOvvJ1HL0hv7Lb092tolOk0oMQBXfN3CVmwhxTaOxfsh9tLs3mP+/PY88dk97\n"
    "OE0QU8Avh/ijRTBDMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEG\n"
    "MB0GA1UdDgQWBBT21DHIBlEUGdSCp5D/kZFLr4ruEjAKBggqhkjOPQQDAgNJADBG\n"
    "AiEAqgnCfTVPOk/kT+Wn/H5ryacc14KkynB1OKcAyCEfI1gCIQDZKORw7O3ttqiQ\n"
    "CyCPqsHrMNxiCVdPioAS0ZG6WdiLEg==\n"
    "-----END CERTIFICATE-----\n";

accord::ClientCertificateVerifier* MakeVerifier() {
  char path[] = "/tmp/accord-handshake-fuzz-ca-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) std::abort();
  close(fd);
  std::ofstream(path) << kCaPem;
  auto v = accord::ClientCertificateVerifier::Create(path);
  std::remove(path);
  if (!v.ok()) std::abort();
  return v->release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static accord::ClientCertificateVerifier* verifier = MakeVerifier();
  const std::string input(reinterpret_cast<const char*>(data), size);
  // The leaf is the first certificate; the chain whatever follows it.
  constexpr char kEnd[] = "-----END CERTIFICATE-----";
  const size_t end = input.find(kEnd);
  const std::string chain =
      end == std::string::npos ? "" : input.substr(end + sizeof(kEnd) - 1);
  auto refusal = verifier->Verify(input, chain);
  if (refusal.has_value()) {
    if (refusal->reason.empty()) std::abort();
  } else if (input.find("CERTIFICATE-----") == std::string::npos) {
    std::abort();  // accepted something that is not a certificate
  }
  return 0;
}
