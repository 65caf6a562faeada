// Decision latency on a generated policy: 200 organisations, 100 agreements,
// 2,000 rules (requesters and holders a mix of org ids and kinds). Reports the
// mean from Google Benchmark, then a separate pass that times every decision
// to report p50/p99, and counts heap allocations per decision with a
// replaced operator new. Prints `BENCH <name> <value> <unit>` lines.
#include <benchmark/benchmark.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "policy/compiled.h"
#include "policy/policy.h"
#include "runtime/clock.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Counting allocator: every heap allocation in the process goes through here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace accord::policy {
namespace {

constexpr int kOrgs = 200;
constexpr int kAgreements = 100;
constexpr int kRulesPerAgreement = 20;
constexpr int kPurposes = 8;
const absl::Time kAt = absl::FromUnixSeconds(1773568800);

const accord::v1::OrgKind kKinds[] = {
    accord::v1::ORG_KIND_VOLUNTARY, accord::v1::ORG_KIND_POLICE,
    accord::v1::ORG_KIND_COUNCIL,   accord::v1::ORG_KIND_HEALTH,
    accord::v1::ORG_KIND_EDUCATION, accord::v1::ORG_KIND_PROBATION,
    accord::v1::ORG_KIND_HOUSING};

std::string Org(int i) { return absl::StrCat("org-", i); }
std::string PurposeName(int i) { return absl::StrCat("purpose-", i); }

struct Generated {
  PolicySet::Source partnership;
  std::vector<PolicySet::Source> agreements;
};

Generated Generate() {
  std::mt19937 rng(20260315);
  Generated g;
  accord::v1::Partnership p;
  p.set_id("bench.accord");
  p.set_name("Bench");
  for (int i = 0; i < kOrgs; ++i) {
    auto* o = p.add_organisations();
    o->set_id(Org(i));
    o->set_name(Org(i));
    o->set_kind(kKinds[i % 7]);
    o->mutable_contact()->set_name("c");
  }
  for (int i = 0; i < kPurposes; ++i) {
    auto* pu = p.add_purposes();
    pu->set_id(PurposeName(i));
    pu->set_description("d");
  }
  google::protobuf::TextFormat::PrintToString(p, &g.partnership.text);
  g.partnership.name = "partnership.textproto";

  const auto fields = AllFields();
  for (int a = 0; a < kAgreements; ++a) {
    accord::v1::Agreement ag;
    ag.set_id(absl::StrCat("agreement-", a));
    ag.set_version(1);
    ag.set_title("t");
    std::vector<int> parties;
    while (parties.size() < 20) {
      const int o = static_cast<int>(rng() % kOrgs);
      if (std::find(parties.begin(), parties.end(), o) == parties.end())
        parties.push_back(o);
    }
    for (int o : parties) ag.add_parties(Org(o));
    ag.mutable_valid_from()->set_seconds(1767225600);
    ag.mutable_valid_until()->set_seconds(1861920000);
    ag.mutable_review_by()->set_seconds(1814313600);
    for (int r = 0; r < kRulesPerAgreement; ++r) {
      auto* rule = ag.add_rules();
      rule->set_id(absl::StrCat("rule-", r));
      auto pick =
          [&](google::protobuf::RepeatedPtrField<accord::v1::PartySelector>*
                  sel) {
            const int n = 1 + static_cast<int>(rng() % 3);
            for (int k = 0; k < n; ++k) {
              if (rng() % 3 == 0) {
                sel->Add()->set_kind(kKinds[rng() % 7]);
              } else {
                sel->Add()->set_org_id(Org(parties[rng() % parties.size()]));
              }
            }
          };
      pick(rule->mutable_requesters());
      pick(rule->mutable_holders());
      rule->set_action(static_cast<accord::v1::Action>(1 + rng() % 3));
      rule->add_purposes(PurposeName(static_cast<int>(rng() % kPurposes)));
      if (rng() % 2)
        rule->add_purposes(PurposeName(static_cast<int>(rng() % kPurposes)));
      rule->set_lawful_basis(accord::v1::LAWFUL_BASIS_PUBLIC_TASK);
      rule->set_art9_condition(accord::v1::ART9_CONDITION_SCH1_SAFEGUARDING);
      rule->set_art10_condition(accord::v1::ART10_CONDITION_SCH1_SAFEGUARDING);
      rule->set_consent_required(rng() % 4 != 0);
      if (rule->consent_required() && rng() % 2) {
        auto* c = rule->mutable_no_consent();
        c->set_basis(accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM);
        c->add_accepted_reasons(
            accord::v1::CONSENT_NOT_SOUGHT_REASON_WOULD_PREJUDICE_PROTECTION);
        c->set_require_justification(true);
        c->set_approver_role("duty-inspector");
      }
      std::vector<int> items;
      while (items.size() < 6) {
        const int item = static_cast<int>(rng() % kItemCount);
        if (std::find(items.begin(), items.end(), item) == items.end())
          items.push_back(item);
      }
      for (int item : items) {
        auto* rel = rule->add_release();
        if (item < kFieldItems) {
          rel->set_field(std::string(fields[item].name));
          rel->set_transform(fields[item].kind == ValueKind::kDate
                                 ? accord::v1::TRANSFORM_DATE_TO_AGE_BAND
                                 : accord::v1::TRANSFORM_KEEP);
        } else {
          rel->set_category(
              static_cast<accord::v1::DataCategory>(item - kFieldItems + 1));
          rel->set_transform(accord::v1::TRANSFORM_KEEP);
        }
      }
    }
    PolicySet::Source s;
    s.name = absl::StrCat("agreement-", a, ".textproto");
    google::protobuf::TextFormat::PrintToString(ag, &s.text);
    g.agreements.push_back(std::move(s));
  }
  return g;
}

struct Fixture {
  std::shared_ptr<const PolicySet> policy;
  std::unique_ptr<Engine> engine;
  FakeClock clock{kAt};
  std::vector<std::string> org_names;
  std::vector<std::string> purpose_names;
  std::vector<Request> requests;
  NoConsentAssertion assertion;
  std::string dir;
};

Fixture& Get() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    Generated g = Generate();
    // Write the files so the Engine (the real entry point) loads them.
    fx->dir = absl::StrCat("/tmp/policy_bench_", getpid());
    std::string mk = "mkdir -p " + fx->dir;
    if (std::system(mk.c_str()) != 0) std::abort();
    auto write = [&](const PolicySet::Source& s) {
      const std::string path = fx->dir + "/" + s.name;
      std::ofstream(path) << s.text;
      return path;
    };
    const std::string partnership = write(g.partnership);
    std::vector<std::string> agreements;
    for (const auto& a : g.agreements) agreements.push_back(write(a));
    auto engine = Engine::Create(partnership, agreements, &fx->clock);
    if (!engine.ok()) {
      std::fprintf(stderr, "generated policy does not load: %s\n",
                   std::string(engine.status().message()).c_str());
      std::abort();
    }
    fx->engine = std::move(*engine);
    fx->policy = fx->engine->current();
    std::fprintf(
        stderr, "generated policy: %d organisations, %d agreements, %d rules\n",
        kOrgs, fx->policy->agreement_count(), fx->policy->rule_count());
    for (int i = 0; i < kOrgs; ++i) fx->org_names.push_back(Org(i));
    for (int i = 0; i < kPurposes; ++i)
      fx->purpose_names.push_back(PurposeName(i));
    fx->assertion.basis = accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM;
    fx->assertion.reason =
        accord::v1::CONSENT_NOT_SOUGHT_REASON_WOULD_PREJUDICE_PROTECTION;
    fx->assertion.has_justification = true;
    fx->assertion.has_approver = true;
    fx->assertion.approver_role = "duty-inspector";
    // Requests: 3/4 drawn from pairs some rule covers (so they reach rule
    // evaluation), 1/4 uniformly random (mostly quick denials).
    std::mt19937 rng(7);
    const PolicyData& d = fx->policy->data();
    for (int i = 0; i < 4096; ++i) {
      Request q;
      if (i % 4 != 0) {
        const CompiledRule& r = d.rules[rng() % d.rules.size()];
        if (r.requesters.empty() || r.holders.empty()) continue;
        q.requester_org = d.org_ids[r.requesters[rng() % r.requesters.size()]];
        q.holder_org = d.org_ids[r.holders[rng() % r.holders.size()]];
        q.action = r.action;
      } else {
        q.requester_org = fx->org_names[rng() % kOrgs];
        q.holder_org = fx->org_names[rng() % kOrgs];
        q.action = static_cast<accord::v1::Action>(1 + rng() % 3);
      }
      q.purpose = fx->purpose_names[rng() % kPurposes];
      q.at = kAt;
      for (int k = 0; k < 3; ++k)
        q.AskField(AllFields()[rng() % kFieldItems].name);
      q.AskCategory(static_cast<accord::v1::DataCategory>(1 + rng() % 10));
      if (rng() % 8 == 0) q.no_consent = &fx->assertion;
      fx->requests.push_back(q);
    }
    return fx;
  }();
  return *f;
}

void BM_PolicySetDecide(benchmark::State& state) {
  Fixture& f = Get();
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    const Decision d =
        f.policy->Decide(f.requests[i++ & (f.requests.size() - 1)]);
    allowed += d.allowed();
    benchmark::DoNotOptimize(d);
  }
  state.counters["allow_ratio"] = benchmark::Counter(
      static_cast<double>(allowed) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_PolicySetDecide);

void BM_EngineDecide(benchmark::State& state) {
  Fixture& f = Get();
  size_t i = 0;
  for (auto _ : state) {
    const Decision d =
        f.engine->Decide(f.requests[i++ & (f.requests.size() - 1)]);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EngineDecide);

void BM_EngineDecideProto(benchmark::State& state) {
  Fixture& f = Get();
  accord::v1::DecisionRequest r;
  r.set_requester_org(std::string(f.requests[1].requester_org));
  r.set_holder_org(std::string(f.requests[1].holder_org));
  r.set_action(f.requests[1].action);
  r.set_purpose(std::string(f.requests[1].purpose));
  r.add_fields("date_of_birth");
  *r.mutable_at() = ToProtoTime(kAt);
  for (auto _ : state) benchmark::DoNotOptimize(f.engine->DecideProto(r));
}
BENCHMARK(BM_EngineDecideProto);

// Times each decision on its own (steady_clock, ~20 ns overhead included)
// and counts allocations over the whole pass.
void LatencyPass() {
  Fixture& f = Get();
  constexpr int kWarm = 20000, kN = 400000;
  for (int i = 0; i < kWarm; ++i) {
    benchmark::DoNotOptimize(
        f.engine->Decide(f.requests[i & (f.requests.size() - 1)]));
  }
  std::vector<double> ns(kN);
  const uint64_t before = g_allocations.load();
  for (int i = 0; i < kN; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Decision d = f.engine->Decide(f.requests[i & (f.requests.size() - 1)]);
    benchmark::DoNotOptimize(d);
    const auto t1 = std::chrono::steady_clock::now();
    ns[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
  }
  const uint64_t allocs = g_allocations.load() - before;
  std::sort(ns.begin(), ns.end());
  const double p50 = ns[kN / 2] / 1000.0;
  const double p99 = ns[kN * 99 / 100] / 1000.0;
  const double p999 = ns[kN * 999 / 1000] / 1000.0;
  std::printf("BENCH policy_decision_p50_us %.3f us\n", p50);
  std::printf("BENCH policy_decision_p99_us %.3f us\n", p99);
  std::printf("BENCH policy_decision_p999_us %.3f us\n", p999);
  std::printf("BENCH policy_decision_allocs %llu count\n",
              static_cast<unsigned long long>(allocs));
  std::printf("BENCH policy_rules %d count\n", f.policy->rule_count());
}

}  // namespace
}  // namespace accord::policy

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  accord::policy::LatencyPass();
  std::system(("rm -rf " + accord::policy::Get().dir).c_str());
  return 0;
}
