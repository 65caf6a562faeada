// agent_bench: the agent's two speed targets, measured on a real SQLite store.
//
//  - Disclose for one subject among 1,000,000 subjects: the whole
//    Discloser::Disclose call (policy re-check, token match, consent check,
//    minimisation) for random subjects, p99 <= 200 us. The 1M-subject store is
//    built once into <build>/agent-bench/ (or $ACCORD_AGENT_BENCH_DIR) and
//    reused by later runs.
//  - Import of 100,000 CSV rows (subject, record and consent on each row)
//    through ImportSession into a fresh store: >= 20,000 rows/s.
//
// Prints `BENCH agent_disclose_p99_us <v> us`,
// `BENCH agent_import_rows_per_s <v> rows/s` and the import's wall-clock and
// CPU time per row: the importing thread's (`agent_import_wall_us_per_row`,
// `agent_import_cpu_us_per_row`) and the whole process's, the store's
// checkpoint thread included (`agent_import_process_cpu_us_per_row`). Run only
// the import with
// --benchmark_filter=Import (the disclose store is then not built).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/disclosure.h"
#include "agent/import.h"
#include "agent/local_api.h"
#include "agent/store.h"
#include "agent/test_data.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"

namespace accord::agent {
namespace {

using testing::TestNow;

constexpr int64_t kSubjects = 1000000;
constexpr int kImportRows = 100000;
constexpr benchmark::IterationCount kMeasuredCalls = 50000;
constexpr char kStoreVersion[] = "agent-bench-store v1";

std::string BenchDir() {
  if (const char* d = std::getenv("ACCORD_AGENT_BENCH_DIR")) return d;
  // The binary lives in <build>/bin.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "agent-bench";
  return (exe.parent_path().parent_path() / "agent-bench").string();
}

// The identifiers of bench subject `i`: distinct names and dates of birth.
std::string GivenName(int64_t i) { return absl::StrCat("Given", i % 5003); }
std::string FamilyName(int64_t i) { return absl::StrCat("Family", i); }
std::string DateOfBirth(int64_t i) {
  const absl::CivilDay day = absl::CivilDay(1940, 1, 1) + (i * 7919) % 27000;
  return absl::FormatCivilTime(day);
}
std::string Postcode(int64_t i) {
  return absl::StrFormat("ND%d %d%c%c", static_cast<int>(i % 9 + 1),
                         static_cast<int>(i % 10),
                         static_cast<char>('A' + (i / 10) % 20),
                         static_cast<char>('A' + (i / 200) % 20));
}

struct World {
  std::string dir;
  FakeClock clock{TestNow()};
  std::shared_ptr<const PartnershipDirectory> partnership;
  std::unique_ptr<policy::Engine> engine;
  std::unique_ptr<linkage::LinkageKey> key;

  static World& Get() {
    static World* world = [] {
      auto* fresh = new World;
      fresh->dir = BenchDir();
      std::filesystem::create_directories(fresh->dir);
      std::ofstream(fresh->dir + "/partnership.textproto", std::ios::trunc)
          << testing::kPartnershipText;
      std::ofstream(fresh->dir + "/isa.textproto", std::ios::trunc)
          << testing::kAgreementText;
      fresh->partnership =
          *PartnershipDirectory::Load(fresh->dir + "/partnership.textproto");
      fresh->engine = std::move(*policy::Engine::Create(
          fresh->dir + "/partnership.textproto",
          {fresh->dir + "/isa.textproto"}, &fresh->clock));
      fresh->key = std::make_unique<linkage::LinkageKey>(
          std::move(*linkage::LinkageKey::FromBytes(std::string(32, 'k'))));
      return fresh;
    }();
    return *world;
  }

  std::vector<accord::v1::SubjectToken> Tokens(int64_t i) const {
    linkage::IdentifierSet ids;
    ids.given_name = GivenName(i);
    ids.family_name = FamilyName(i);
    ids.date_of_birth = DateOfBirth(i);
    ids.postcode = Postcode(i);
    return *linkage::DeriveTokens(*key, ids);
  }
};

// The 1M-subject store: each subject with a needs record, a case summary
// and a consent to vol-b for support. Built once; a marker file says it is
// complete.
std::unique_ptr<AgentStore> OpenMillionStore() {
  World& w = World::Get();
  const std::string db = w.dir + "/disclose-1m.db";
  const std::string marker = db + ".complete";
  const bool complete =
      std::filesystem::exists(marker) && std::filesystem::exists(db);
  if (!complete) {
    for (const char* suffix : {"", "-wal", "-shm", ".complete"})
      std::filesystem::remove(db + suffix);
  }
  auto store = AgentStore::Open(db);
  if (!store.ok()) {
    std::fprintf(stderr, "agent_bench: %s\n",
                 std::string(store.status().message()).c_str());
    std::exit(1);
  }
  if (complete) {
    std::printf("agent_bench: reusing %s\n", db.c_str());
    return std::move(*store);
  }
  std::printf("agent_bench: building %lld subjects in %s (once)\n",
              static_cast<long long>(kSubjects), db.c_str());
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  constexpr int64_t kBatch = 20000;
  for (int64_t base = 0; base < kSubjects; base += kBatch) {
    auto s = (*store)->Write([&](AgentStore::Writer& writer) -> absl::Status {
      for (int64_t i = base; i < std::min(kSubjects, base + kBatch); ++i) {
        accord::v1::Subject subject;
        subject.set_local_id(absl::StrCat("S-", i));
        auto& f = *subject.mutable_fields();
        f["given_name"] = GivenName(i);
        f["family_name"] = FamilyName(i);
        f["date_of_birth"] = DateOfBirth(i);
        f["postcode"] = Postcode(i);
        f["phone"] = "07700 900000";
        if (auto r = writer.UpsertSubject(subject, w.Tokens(i)); !r.ok())
          return r.status();
        for (auto category : {accord::v1::DATA_CATEGORY_NEEDS,
                              accord::v1::DATA_CATEGORY_CASE_SUMMARY}) {
          accord::v1::Record rec;
          rec.set_local_id(absl::StrCat("R-", i, "-", category));
          rec.set_subject_local_id(subject.local_id());
          rec.set_category(category);
          rec.set_provenance(accord::v1::PROVENANCE_FACT);
          rec.set_service("isva");
          rec.set_author_role("ISVA");
          *rec.mutable_recorded_at() = ToProtoTime(TestNow() - absl::Hours(24));
          rec.set_text(
              "Wants help with housing and a solicitor; prefers text "
              "messages; attends on Tuesdays.");
          if (auto r = writer.UpsertRecord(rec); !r.ok()) return r.status();
        }
        accord::v1::ConsentRecord c;
        c.set_id(absl::StrCat("C-", i));
        c.set_subject_local_id(subject.local_id());
        c.add_granted_to_orgs("vol-b");
        c.add_purposes("support");
        for (auto category : {accord::v1::DATA_CATEGORY_IDENTITY,
                              accord::v1::DATA_CATEGORY_CONTACT,
                              accord::v1::DATA_CATEGORY_NEEDS,
                              accord::v1::DATA_CATEGORY_CASE_SUMMARY}) {
          c.add_categories(category);
        }
        *c.mutable_given_at() = ToProtoTime(TestNow() - absl::Hours(48));
        c.set_method(accord::v1::CONSENT_METHOD_WRITTEN);
        c.set_recorded_by("ISVA");
        if (auto r = writer.RecordConsent(c); !r.ok()) return r.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "agent_bench: building: %s\n",
                   std::string(s.message()).c_str());
      std::exit(1);
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("agent_bench: built in %.1f s\n", secs);
  std::ofstream(marker, std::ios::trunc) << kStoreVersion;
  return std::move(*store);
}

double ProcessCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double ThreadCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  return v[i];
}

void BM_DiscloseAmongMillion(benchmark::State& state) {
  World& w = World::Get();
  static std::unique_ptr<AgentStore> store = OpenMillionStore();
  Discloser discloser("vol-a", w.partnership, store.get(), w.engine.get(),
                      "pseudonym-key-of-vol-a-32-bytes!", &w.clock);
  accord::v1::DecisionRequest d;
  d.set_requester_org("vol-b");
  d.set_holder_org("vol-a");
  d.set_action(accord::v1::ACTION_QUERY);
  d.set_purpose("support");
  *d.mutable_at() = ToProtoTime(w.clock.Now());
  const accord::v1::Decision decision = w.engine->DecideProto(d);

  // Requests for random subjects, prepared outside the timed region (the
  // caller derives tokens, not the agent).
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(0, kSubjects - 1);
  constexpr int kRequests = 4096;
  std::vector<accord::v1::DiscloseRequest> requests(kRequests);
  for (auto& r : requests) {
    r.set_request_id("bench");
    r.set_requester_org("vol-b");
    r.set_purpose("support");
    r.set_mode(accord::v1::QUERY_MODE_RECORDS);
    for (auto& t : w.Tokens(pick(rng))) *r.add_subjects() = t;
    *r.mutable_decision() = decision;
  }
  // Wall-clock time of each call, and the CPU time this thread spent in it
  // (which leaves out time the thread was preempted on a busy machine).
  std::vector<double> micros, cpu_micros;
  micros.reserve(1 << 16);
  cpu_micros.reserve(1 << 16);
  size_t n = 0, answered = 0;
  for (auto _ : state) {
    const auto& req = requests[n++ % kRequests];
    const double c0 = ThreadCpuMicros();
    const auto t0 = std::chrono::steady_clock::now();
    auto resp = discloser.Disclose(req);
    const auto t1 = std::chrono::steady_clock::now();
    cpu_micros.push_back(ThreadCpuMicros() - c0);
    micros.push_back(
        std::chrono::duration<double, std::micro>(t1 - t0).count());
    answered += resp.status() == accord::v1::HOLDER_STATUS_ANSWERED &&
                resp.records_size() == 2;
    benchmark::DoNotOptimize(resp);
  }
  if (answered != n) {
    state.SkipWithError("a disclosure did not answer with both records");
    return;
  }
  const double p50 = Percentile(micros, 0.50);
  const double p99 = Percentile(micros, 0.99);
  state.counters["p50_us"] = p50;
  state.counters["p99_us"] = p99;
  const double cpu_p99 = Percentile(cpu_micros, 0.99);
  state.counters["cpu_p99_us"] = cpu_p99;
  if (state.max_iterations < kMeasuredCalls) return;  // the warm-up pass
  std::printf("BENCH agent_disclose_cpu_p50_us %.1f us\n",
              Percentile(cpu_micros, 0.50));
  std::printf("BENCH agent_disclose_cpu_p99_us %.1f us\n", cpu_p99);
  std::printf("BENCH agent_disclose_p50_us %.1f us\n", p50);
  std::printf("BENCH agent_disclose_p99_us %.1f us\n", p99);
}
// Warm-up pass (reads the store's pages in), then the measured pass, the
// only one to print BENCH lines.
BENCHMARK(BM_DiscloseAmongMillion)
    ->Iterations(5000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DiscloseAmongMillion)
    ->Iterations(kMeasuredCalls)
    ->Unit(benchmark::kMicrosecond);

// A CSV export as a partner's spreadsheet would produce it.
std::string ImportFile(int rows) {
  std::string out =
      "subject_id,given_name,family_name,date_of_birth,postcode,phone,"
      "record_id,record_category,record_provenance,record_date,record_text,"
      "consent_id,consent_to_orgs,consent_purposes,consent_categories,"
      "consent_given,consent_method,consent_recorded_by\n";
  for (int i = 0; i < rows; ++i) {
    absl::StrAppend(&out, "IMP-", i, ",", GivenName(i), ",", FamilyName(i), ",",
                    DateOfBirth(i), ",", Postcode(i), ",07700 900", i % 1000,
                    ",IMP-R-", i,
                    ",needs,fact,2026-02-01,\"Wants help with housing, and a "
                    "solicitor.\",IMP-C-",
                    i,
                    ",vol-b,support,identity;contact;needs,2026-02-01,written,"
                    "Key worker\n");
  }
  return out;
}

// Rows to import: kImportRows, or $ACCORD_IMPORT_BENCH_ROWS for a quicker
// look (e.g. under a profiler).
int ImportRows() {
  if (const char* n = std::getenv("ACCORD_IMPORT_BENCH_ROWS")) {
    if (const int rows = std::atoi(n); rows > 0) return rows;
  }
  return kImportRows;
}

void BM_Import100k(benchmark::State& state) {
  World& w = World::Get();
  const int rows = ImportRows();
  const std::string file = ImportFile(rows);
  double rows_per_s = 0, wall_us_per_row = 0, cpu_us_per_row = 0,
         process_cpu_us_per_row = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string db = w.dir + "/import-bench.db";
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(db + suffix);
    auto store = AgentStore::Open(db);
    ImportOptions options;
    options.partnership = w.partnership.get();
    auto session = ImportSession::Start(accord::v1::IMPORT_FORMAT_CSV,
                                        store->get(), w.key.get(), options);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = ThreadCpuMicros();
    const double p0 = ProcessCpuMicros();
    constexpr size_t kChunk = 64 * 1024;
    for (size_t i = 0; i < file.size(); i += kChunk) {
      if (!(*session)->Feed(absl::string_view(file).substr(i, kChunk)).ok()) {
        state.SkipWithError("import failed");
        return;
      }
    }
    auto report = (*session)->Finish();
    // The import runs on this thread (parsing, checks and SQLite's writes).
    const double cpu_us = ThreadCpuMicros() - c0;
    // And the store's checkpoint thread, which copies the WAL back into the
    // database meanwhile.
    const double process_cpu_us = ProcessCpuMicros() - p0;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!report.ok() || report->rows_applied() != static_cast<uint64_t>(rows)) {
      state.SkipWithError("not every row was applied");
      return;
    }
    rows_per_s = rows / secs;
    wall_us_per_row = secs * 1e6 / rows;
    cpu_us_per_row = cpu_us / rows;
    process_cpu_us_per_row = process_cpu_us / rows;
  }
  state.counters["rows_per_s"] = rows_per_s;
  state.counters["cpu_us_per_row"] = cpu_us_per_row;
  std::printf("BENCH agent_import_rows_per_s %.0f rows/s\n", rows_per_s);
  std::printf("BENCH agent_import_wall_us_per_row %.1f us\n", wall_us_per_row);
  std::printf("BENCH agent_import_cpu_us_per_row %.1f us\n", cpu_us_per_row);
  std::printf("BENCH agent_import_process_cpu_us_per_row %.1f us\n",
              process_cpu_us_per_row);
}
BENCHMARK(BM_Import100k)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace accord::agent

BENCHMARK_MAIN();
