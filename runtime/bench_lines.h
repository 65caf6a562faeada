// The runtime's micro-benchmarks print each result as a line the docs
// collect, `BENCH <name> <CPU time per op> us_cpu/op`, after Google
// Benchmark's own table. CPU time: the figure that depends least on other
// load. Header-only, for benchmark programs (RunWithTestPki needs
// accord_test_pki).
#ifndef ACCORD_RUNTIME_BENCH_LINES_H_
#define ACCORD_RUNTIME_BENCH_LINES_H_

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/test_pki.h"

namespace accord {

class BenchLines : public benchmark::ConsoleReporter {
 public:
  // `decimals`: of the microseconds printed.
  explicit BenchLines(int decimals = 1)
      : ConsoleReporter(OO_None), decimals_(decimals) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      std::printf("BENCH %s %.*f us_cpu/op\n", run.benchmark_name().c_str(),
                  decimals_, run.GetAdjustedCPUTime() / 1000.0);
    }
  }

 private:
  const int decimals_;
};

// main() of a benchmark that needs a partnership PKI (deploy/pki, see
// runtime/test_pki.h): makes one for `partnership_id` with the organisation
// police, points `*pki_dir` at it while the benchmarks run, then removes it.
inline int RunWithTestPki(int argc, char** argv, const std::string& prefix,
                          std::string** pki_dir, int decimals = 1) {
  benchmark::Initialize(&argc, argv);
  const std::string dir =
      testing::MakeTestPki(prefix, "b.accord", {"police"});
  if (dir.empty()) {
    std::fprintf(stderr,
                 "cannot make the PKI with deploy/pki (run from the source "
                 "tree or set ACCORD_SOURCE_DIR)\n");
    return 1;
  }
  *pki_dir = new std::string(dir);
  BenchLines reporter(decimals);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  testing::RemoveTestPki(dir);
  delete *pki_dir;
  *pki_dir = nullptr;
  return 0;
}

}  // namespace accord

#endif  // ACCORD_RUNTIME_BENCH_LINES_H_
