// Benchmarks of client-certificate verification at the TLS handshake: what
// Accord's own check (runtime/handshake.h) adds to each new connection, for
// an accepted and a refused certificate. Certificates come from deploy/pki
// (run from the source tree, or set ACCORD_SOURCE_DIR). Prints
// `BENCH <name> <value> <unit>` lines; figures are in docs/SECURITY.md.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
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

// Prints each result in the BENCH line format the docs collect.
class BenchLines : public benchmark::ConsoleReporter {
 public:
  BenchLines() : ConsoleReporter(OO_None) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      std::printf("BENCH %s %.1f us_cpu/op\n", run.benchmark_name().c_str(),
                  run.GetAdjustedCPUTime() / 1000.0);
    }
  }
};

}  // namespace
}  // namespace accord

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* src = std::getenv("ACCORD_SOURCE_DIR");
  const std::string scripts =
      absl::StrCat(src != nullptr ? src : ".", "/deploy/pki");
  char tmpl[] = "/tmp/accord-handshake-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  accord::pki_dir = new std::string(tmpl);
  const std::string make = absl::StrCat(
      "(", scripts, "/make-pki.sh --partnership-id b.accord --org police ",
      "--out ", tmpl, " && ", scripts,
      "/make-test-certs.sh --partnership-id b.accord --out ", tmpl,
      ") >/dev/null 2>&1");
  if (std::system(make.c_str()) != 0) {
    std::fprintf(stderr, "cannot make the PKI with %s\n", scripts.c_str());
    return 1;
  }
  accord::BenchLines reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  (void)std::system(absl::StrCat("rm -rf '", tmpl, "'").c_str());
  delete accord::pki_dir;
  return 0;
}
