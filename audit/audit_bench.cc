// Audit log benchmarks: durable appends with group commit, verification of a
// 1,000,000-entry export, and inclusion proofs in a 10,000,000-entry log.
// Each prints a `BENCH <name> <value> <unit>` line for docs/AUDIT.md. The
// large inputs are built once and cached under ACCORD_AUDIT_BENCH_DIR.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/hash_store.h"
#include "audit/merkle.h"
#include "audit/sqlite_audit_log.h"
#include "audit/tree_head.h"
#include "audit/verify.h"
#include "runtime/clock.h"
#include "runtime/sqlite.h"

namespace accord::audit {
namespace {

std::string BenchDir() {
  const std::string dir = ACCORD_AUDIT_BENCH_DIR;
  mkdir(dir.c_str(), 0700);
  return dir;
}

std::shared_ptr<const TreeHeadSigner> BenchSigner() {
  auto pem = TreeHeadKeyPemFromSeed(std::string(32, '\x42'));
  return std::shared_ptr<const TreeHeadSigner>(
      std::move(*TreeHeadSigner::FromPrivateKeyPem(*pem)));
}

// A log under BenchDir(); `fresh` removes any earlier one. power_loss:
// AuditDurability::kPowerLoss (synchronous=FULL), else kProcessCrash.
std::unique_ptr<AuditLog> OpenBenchLog(
    const std::string& name, bool fresh, bool power_loss,
    absl::Duration max_delay = SqliteAuditLogOptions{}.max_delay) {
  static SystemClock clock;
  const std::string path = absl::StrCat(BenchDir(), "/", name);
  if (fresh) {
    for (const char* s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
  }
  SqliteAuditLogOptions o;
  o.db_path = path;
  o.signer = BenchSigner();
  o.clock = &clock;
  o.max_delay = max_delay;
  o.durability =
      power_loss ? AuditDurability::kPowerLoss : AuditDurability::kProcessCrash;
  return *OpenSqliteAuditLog(o);
}

accord::v1::AuditEntry BenchEntry(uint64_t i) {
  accord::v1::AuditEntry e;
  e.set_request_id(absl::StrCat("req-", i));
  e.set_caller("spiffe://bench/org/police-north");
  e.set_caller_org(i % 3 ? "police-north" : "council-childrens");
  e.mutable_actor()->set_user_id(absl::StrCat("pc", i % 97));
  e.mutable_actor()->set_role("officer");
  e.set_method("Query");
  e.set_action(accord::v1::ACTION_QUERY);
  e.set_purpose("safeguarding");
  e.set_agreement_id("isa-north-1");
  e.set_agreement_version(3);
  e.set_rule_id("police-query");
  e.set_holder("womens-centre");
  auto* t = e.add_subjects();
  t->set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  t->set_value(HexEncode(Sha256(absl::StrCat("subject ", i % 5000))));
  e.add_fields_released("dob");
  e.add_fields_released("postcode_district");
  e.set_record_count(2);
  e.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  return e;
}

// Durable appends as the gateway makes them: `in_flight` requests, each
// releasing its answer (here: appending its next entry) only when its entry
// is durable. Two request threads build and append the entries, as gRPC's
// threads do on a 2-core machine; no thread per request. Argument 0: durable
// against power loss (the default, synchronous=FULL); 1: against a crash of
// the process only (synchronous=NORMAL). Argument 1: requests in flight.
void BM_DurableAppends(benchmark::State& state) {
  const bool power_loss = state.range(0) == 0;
  const int in_flight = static_cast<int>(state.range(1));
  const int total = std::max(100 * in_flight, 100000);
  for (auto _ : state) {
    auto log = OpenBenchLog("append.db", /*fresh=*/true, power_loss);

    absl::Mutex mu;
    std::deque<int> ready;  // requests whose last entry is durable
    int issued = 0, durable = 0;
    const absl::Time start = absl::Now();
    for (int r = 0; r < in_flight; ++r) ready.push_back(r);
    auto request_thread = [&] {
      while (true) {
        uint64_t n;
        {
          absl::MutexLock l(&mu);
          mu.Await(absl::Condition(
              +[](std::deque<int>* q) { return !q->empty(); }, &ready));
          if (ready.front() < 0) return;  // stop marker, left for the other
          ready.pop_front();
          if (issued == total) continue;
          n = issued++;
        }
        log->Append(BenchEntry(n), [&](absl::StatusOr<uint64_t> seq) {
          if (!seq.ok()) std::abort();
          absl::MutexLock l(&mu);
          if (++durable == total) {
            ready.push_front(-1);
          } else {
            ready.push_back(0);
          }
        });
      }
    };
    std::thread a(request_thread), b(request_thread);
    a.join();
    b.join();
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    const double per_s = total / secs;
    state.counters["entries_per_s"] = per_s;
    std::printf("BENCH %s%s %.0f entries/s\n",
                power_loss ? "audit_append_per_s"
                           : "audit_append_process_crash_durable_per_s",
                in_flight == 64 ? "_inflight64" : "", per_s);
  }
}
BENCHMARK(BM_DurableAppends)
    ->Args({0, 64})
    ->Args({0, 1024})
    ->Args({1, 64})
    ->Args({1, 1024})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

// One request at a time: the time from Append to its durability callback,
// which a lone query waits for before its answer is released. Argument: as
// for BM_DurableAppends.
void BM_AppendLatencyAlone(benchmark::State& state) {
  const bool power_loss = state.range(0) == 0;
  for (auto _ : state) {
    auto log = OpenBenchLog("latency.db", /*fresh=*/true, power_loss,
                            /*max_delay=*/absl::ZeroDuration());
    std::vector<double> us;
    for (int i = 0; i < 3000; ++i) {
      const absl::Time start = absl::Now();
      if (!log->AppendAndWait(BenchEntry(i)).ok()) std::abort();
      us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
      absl::SleepFor(absl::Microseconds(200));  // idle between requests
    }
    std::sort(us.begin(), us.end());
    std::printf("BENCH %s %.0f us\n",
                power_loss ? "audit_append_alone_p50_us"
                           : "audit_append_alone_process_crash_p50_us",
                us[us.size() / 2]);
    state.counters["p50_us"] = us[us.size() / 2];
  }
}
BENCHMARK(BM_AppendLatencyAlone)
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// A subject access report (first page) and a search by user in a
// 1,000,000-entry log with 100,000 subjects (10 entries each), the log built
// once through Append and cached. Most entries are found through the bulk
// index, the newest (1,000,000 mod index_batch) by reading them.
void BM_SubjectAccessMillion(benchmark::State& state) {
  constexpr uint64_t kEntries = 1000000, kSubjects = 100000;
  auto token = [](uint64_t s) {
    return HexEncode(Sha256(absl::StrCat("subject ", s)));
  };
  auto log = OpenBenchLog("search_1m_v2.db", /*fresh=*/false,
                          /*power_loss=*/false);
  if (log->Size() < kEntries) {
    absl::BlockingCounter left(static_cast<int>(kEntries - log->Size()));
    for (uint64_t i = log->Size(); i < kEntries; ++i) {
      accord::v1::AuditEntry e = BenchEntry(i);
      e.mutable_subjects(0)->set_value(token(i % kSubjects));
      log->Append(std::move(e), [&](absl::StatusOr<uint64_t> seq) {
        if (!seq.ok()) std::abort();
        left.DecrementCount();
      });
    }
    left.Wait();
  }
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    std::vector<double> subject_us, user_us;
    for (int i = 0; i < 2000; ++i) {
      accord::v1::SubjectToken t;
      t.set_value(token(rng() % kSubjects));
      absl::Time start = absl::Now();
      auto page = log->SubjectAccess({t}, {});
      subject_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
      if (!page.ok() || page->entries.size() != kEntries / kSubjects)
        std::abort();
      AuditQuery q;
      q.user_id = absl::StrCat("pc", rng() % 97);
      start = absl::Now();
      auto users = log->Search(q, {});
      user_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
      if (!users.ok() || users->entries.size() != kDefaultPageSize)
        std::abort();
    }
    std::sort(subject_us.begin(), subject_us.end());
    std::sort(user_us.begin(), user_us.end());
    std::printf("BENCH audit_subject_access_1m_p50_us %.0f us\n",
                subject_us[subject_us.size() / 2]);
    std::printf("BENCH audit_subject_access_1m_p99_us %.0f us\n",
                subject_us[subject_us.size() * 99 / 100]);
    std::printf("BENCH audit_search_user_page_1m_p50_us %.0f us\n",
                user_us[user_us.size() / 2]);
    state.counters["subject_p50_us"] = subject_us[subject_us.size() / 2];
  }
}
BENCHMARK(BM_SubjectAccessMillion)->Iterations(1)->Unit(benchmark::kSecond);

// Writes a 1,000,000-entry export (and the public key) once.
std::string MillionEntryExport(std::string* public_pem) {
  const std::string path = absl::StrCat(BenchDir(), "/export_1m_v1.jsonl");
  auto signer = BenchSigner();
  *public_pem = signer->public_key_pem();
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && st.st_size > 0) return path;
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  constexpr uint64_t kEntries = 1000000;
  const std::string header = ExportHeaderLine({0, kEntries, {}});
  std::fwrite(header.data(), 1, header.size(), f);
  CompactRange range;
  const absl::Time t0 = absl::FromUnixSeconds(1714550000);
  for (uint64_t i = 0; i < kEntries; ++i) {
    accord::v1::AuditEntry e = BenchEntry(i);
    e.set_seq(i);
    *e.mutable_time() = ToProtoTime(t0 + absl::Microseconds(1237 * i));
    const std::string leaf = EncodeLeaf(e);
    range.Append(LeafHash(leaf));
    const std::string line = JsonLine(e, leaf);
    std::fwrite(line.data(), 1, line.size(), f);
  }
  const std::string head =
      TreeHeadLine(*signer->Sign(kEntries, range.Root(), t0));
  std::fwrite(head.data(), 1, head.size(), f);
  std::fclose(f);
  std::rename(tmp.c_str(), path.c_str());
  return path;
}

void BM_VerifyMillionEntryExport(benchmark::State& state) {
  std::string pem;
  const std::string path = MillionEntryExport(&pem);
  auto verifier = *TreeHeadVerifier::FromPublicKeyPem(pem);
  for (auto _ : state) {
    const absl::Time start = absl::Now();
    auto summary = VerifyJsonlExportFile(path, *verifier);
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    if (!summary.ok() || summary->to_seq != 1000000) std::abort();
    state.counters["seconds"] = secs;
    std::printf("BENCH audit_verify_1m_s %.2f s\n", secs);
  }
}
BENCHMARK(BM_VerifyMillionEntryExport)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

// The hash store of a 10,000,000-entry log, written directly in batches.
std::string TenMillionLeafStore(uint64_t size) {
  const std::string path = absl::StrCat(BenchDir(), "/tiles_10m_h4.db");
  {
    auto db = sqlite::Database::Open(path);
    if (db.ok() && (*db)->Exec(kMerkleTilesSchema).ok() == false) {
      auto reader = *TileReader::Create(**db);
      if (CompactRange::Load(size, *reader).ok()) return path;  // cached
    }
  }
  for (const char* s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
  sqlite::Database::Options fast;
  fast.synchronous_full = false;
  auto db = *sqlite::Database::Open(path, fast);
  if (!db->Exec(kMerkleTilesSchema).ok()) std::abort();
  auto writer = *TileWriter::Create(*db);
  CompactRange range;
  for (uint64_t i = 0; i < size; ++i) {
    char leaf[16];
    std::memcpy(leaf, &i, 8);
    std::memcpy(leaf + 8, &i, 8);
    range.Append(
        LeafHash(absl::string_view(leaf, 16)),
        [&](int l, uint64_t x, const Hash& h) { writer->Add(l, x, h); });
    if ((i + 1) % (1 << 18) == 0 || i + 1 == size) {
      if (!db->Exec("BEGIN").ok() || !writer->Flush().ok() ||
          !db->Exec("COMMIT").ok()) {
        std::abort();
      }
    }
  }
  return path;
}

void BM_InclusionProofTenMillion(benchmark::State& state) {
  constexpr uint64_t kSize = 10000000;
  const std::string path = TenMillionLeafStore(kSize);
  auto db = *sqlite::Database::Open(path);
  auto reader = *TileReader::Create(*db);
  const Hash root = CompactRange::Load(kSize, *reader)->Root();
  std::mt19937_64 rng(7);
  constexpr int kProofs = 2000;
  for (auto _ : state) {
    const absl::Time start = absl::Now();
    for (int i = 0; i < kProofs; ++i) {
      reader->ClearCache();  // every proof reads its tiles afresh
      auto proof = MakeInclusionProof(*reader, rng() % kSize, kSize);
      if (!proof.ok()) std::abort();
      benchmark::DoNotOptimize(proof);
    }
    const double us = absl::ToDoubleMicroseconds(absl::Now() - start) / kProofs;
    // Check one proof end to end.
    const uint64_t leaf = 1234567;
    reader->ClearCache();
    auto proof = *MakeInclusionProof(*reader, leaf, kSize);
    char bytes[16];
    std::memcpy(bytes, &leaf, 8);
    std::memcpy(bytes + 8, &leaf, 8);
    if (!VerifyInclusion(LeafHash(absl::string_view(bytes, 16)), leaf, kSize,
                         proof, root)
             .ok()) {
      std::abort();
    }
    state.counters["us_per_proof"] = us;
    std::printf("BENCH audit_inclusion_proof_us %.1f us\n", us);
  }
}
BENCHMARK(BM_InclusionProofTenMillion)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace accord::audit

BENCHMARK_MAIN();
