// Benchmarks of referral sealing: what sealing and opening cost per referral
// (a fresh X25519 agreement, HKDF and AES-256-GCM each way). Prints
// `BENCH <name> <value> <unit>` lines; figures are in docs/REFERRALS.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "runtime/bench_lines.h"
#include "runtime/seal.h"

namespace accord {
namespace {

const std::string kAad = ReferralAssociatedData("ref-0123456789abcdef01234567",
                                                "rape-crisis", "law-centre");

void BM_Seal(benchmark::State& state) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  const std::string content(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    auto sealed = Seal(recipient.public_key, content, kAad);
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Seal)->Arg(2 << 10)->Arg(64 << 10);

void BM_Open(benchmark::State& state) {
  const X25519KeyPair recipient = GenerateX25519KeyPair();
  const std::string content(static_cast<size_t>(state.range(0)), 'x');
  const auto sealed = *Seal(recipient.public_key, content, kAad);
  for (auto _ : state) {
    auto opened = Open(recipient, sealed, kAad);
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Open)->Arg(2 << 10)->Arg(64 << 10);

}  // namespace
}  // namespace accord

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  accord::BenchLines reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
