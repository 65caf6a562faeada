// Benchmarks of the per-call revocation check (runtime/revocation.h): every
// call on every mutual-TLS port checks its peer's certificate against the
// partnership CRL. "Uncached" parses the certificate on each call, as the
// check did before verdicts were cached; "Cached" is the check as it runs now,
// from one thread and from two at once (a 2-core machine's gRPC threads).
// Certificates come from deploy/pki (run from the source tree, or set
// ACCORD_SOURCE_DIR). Prints `BENCH <name> <value> <unit>` lines; figures are
// in docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/bench_lines.h"
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

}  // namespace
}  // namespace accord

int main(int argc, char** argv) {
  return accord::RunWithTestPki(argc, argv, "accord-revocation-bench", &accord::pki_dir, 3);
}
