// Benchmarks of client-certificate verification at the TLS handshake: what
// Accord's own check (runtime/handshake.h) adds to each new connection, for
// an accepted and a refused certificate. Certificates come from deploy/pki
// (run from the source tree, or set ACCORD_SOURCE_DIR). Prints
// `BENCH <name> <value> <unit>` lines; figures are in docs/SECURITY.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/bench_lines.h"
#include "runtime/crypto.h"
#include "runtime/handshake.h"

namespace accord {
namespace {

std::string* pki_dir = nullptr;

std::string Pem(const std::string& name) {
  return *ReadFile(absl::StrCat(*pki_dir, "/", name, ".pem"));
}

void Verify(benchmark::State& state, const std::string& name, bool accepted) {
  auto verifier = ClientCertificateVerifier::Create(*pki_dir + "/ca.pem");
  if (!verifier.ok()) {
    state.SkipWithError("no CA bundle");
    return;
  }
  const std::string leaf = Pem(name);
  if ((*verifier)->Verify(leaf, "").has_value() == accepted) {
    state.SkipWithError("unexpected verdict");
    return;
  }
  for (auto _ : state) {
    auto refusal = (*verifier)->Verify(leaf, "");
    benchmark::DoNotOptimize(refusal);
  }
}

void BM_VerifyAccepted(benchmark::State& state) {
  Verify(state, "org-police", true);
}
BENCHMARK(BM_VerifyAccepted);

void BM_VerifyRefusedExpired(benchmark::State& state) {
  Verify(state, "expired-org-police", false);
}
BENCHMARK(BM_VerifyRefusedExpired);

void BM_VerifyRefusedOtherCa(benchmark::State& state) {
  Verify(state, "rogue-org-police", false);
}
BENCHMARK(BM_VerifyRefusedOtherCa);

}  // namespace
}  // namespace accord

int main(int argc, char** argv) {
  return accord::RunWithTestPki(argc, argv, "accord-handshake-bench", &accord::pki_dir);
}
