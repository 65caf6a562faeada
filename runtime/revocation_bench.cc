// Benchmarks of the per-call revocation check (runtime/revocation.h): every
// call on every mutual-TLS port checks its peer's certificate against the
// partnership CRL. "Uncached" parses the certificate on each call, as the
// check did before verdicts were cached; "Cached" is the check as it runs now,
// from one thread and from two at once (a 2-core machine's gRPC threads).
// Certificates come from deploy/pki (run from the source tree, or set
// ACCORD_SOURCE_DIR). Prints `BENCH <name> <value> <unit>` lines; figures are
// in docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"
#include "runtime/revocation.h"

namespace accord {
namespace {

std::string* pki_dir = nullptr;

std::string Pem(const std::string& name) {
  return *ReadFile(absl::StrCat(*pki_dir, "/", name, ".pem"));
}

// One list per cache size, shared by the benchmark's threads.
RevocationList* List(size_t cached_certificates) {
  static auto* lists = new std::vector<std::unique_ptr<RevocationList>>;
  static auto* sizes = new std::vector<size_t>;
  for (size_t i = 0; i < sizes->size(); ++i) {
    if ((*sizes)[i] == cached_certificates) return (*lists)[i].get();
  }
  auto list = RevocationList::Load(*pki_dir + "/crl.pem",
                                   *pki_dir + "/ca.pem", nullptr,
                                   cached_certificates);
  if (!list.ok()) return nullptr;
  lists->push_back(*std::move(list));
  sizes->push_back(cached_certificates);
  return lists->back().get();
}

void Check(benchmark::State& state, size_t cached_certificates,
           const std::string& name, bool accepted) {
  RevocationList* list = List(cached_certificates);
  if (list == nullptr) {
    state.SkipWithError("no CRL");
    return;
  }
  const std::string pem = Pem(name);
  if (list->Check(pem).ok() != accepted) {
    state.SkipWithError("unexpected verdict");
    return;
  }
  for (auto _ : state) {
    absl::Status s = list->Check(pem);
    benchmark::DoNotOptimize(s);
  }
}

void BM_RevocationCheckUncached(benchmark::State& state) {
  Check(state, 0, "org-police", true);
}
BENCHMARK(BM_RevocationCheckUncached);

void BM_RevocationCheckCached(benchmark::State& state) {
  Check(state, RevocationList::kDefaultCachedCertificates, "org-police", true);
}
BENCHMARK(BM_RevocationCheckCached)->Threads(1)->Threads(2);

void BM_RevocationCheckCachedRevoked(benchmark::State& state) {
  Check(state, RevocationList::kDefaultCachedCertificates,
        "revoked-org-police", false);
}
BENCHMARK(BM_RevocationCheckCachedRevoked);

// Prints each result in the BENCH line format the docs collect.
class BenchLines : public benchmark::ConsoleReporter {
 public:
  BenchLines() : ConsoleReporter(OO_None) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      std::printf("BENCH %s %.3f us_cpu/op\n", run.benchmark_name().c_str(),
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
  char tmpl[] = "/tmp/accord-revocation-bench-XXXXXX";
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
