// stats_fixture: writes one agent's store for the statistics benchmark
// (bench/statistics.sh) directly with the store's own writer, in bulk-write
// mode (tokens deferred), so that 100,000 subjects and engagements take
// seconds instead of the minutes the local API would take over gRPC.
//
// Subjects get real tokens (agent::PrepareSubject, as the local API derives
// them, with the partnership's linkage key), so a statistics run keys real
// people. Of agent `a` of `n`, subject i with i % 10 == 0 is the same person
// (same name and date of birth) as subject i + 5 of agent a + 1 (mod n), so
// a fifth of each agent's people are shared with a neighbour. Engagements
// (`--engagements` of them, each of a subject drawn at random) start on a
// day of the year from `--from`, with the monitoring dataset filled in:
// referral source, needs, ethnicity, sex, disability, an age band on 60% of
// them (the rest rely on the subject's date of birth) and WEMWBS before and
// after measures on a third. Everything is drawn from `--seed`: the same
// flags write the same store.
//
//   stats_fixture --store FILE --linkage-key FILE --agent A --agents N
//                 --services s1,s2 [--subjects 100000] [--engagements 100000]
//                 [--from 2026-04-01] [--days 365] [--seed 1]
// prints one line: subjects=.. engagements=.. people_with_engagements=..
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "agent/engagement_check.h"
#include "agent/local_api.h"
#include "agent/store.h"
#include "linkage/tokens.h"
#include "runtime/clock.h"

namespace accord::bench {
namespace {

struct Options {
  std::string store;
  std::string linkage_key;
  int64_t agent = -1;
  int64_t agents = 0;
  std::vector<std::string> services;
  int64_t subjects = 100000;
  int64_t engagements = 100000;
  std::string from = "2026-04-01";
  int64_t days = 365;
  uint64_t seed = 1;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "stats_fixture: %s\n", what.c_str());
  std::exit(1);
}

// A number as letters (base 26), so that every person has her own name.
std::string Letters(uint64_t n) {
  std::string s;
  do {
    s.push_back(static_cast<char>('a' + n % 26));
    n /= 26;
  } while (n > 0);
  return s;
}

// One person of the partnership: her identifiers follow from `person` alone,
// so two agents that hold the same person write the same name and date of
// birth.
accord::v1::Subject PersonAt(uint64_t person, const std::string& local_id) {
  static const char* kGiven[] = {"Amina", "Beth",  "Carys", "Dorota", "Efe",
                                 "Farah", "Gwen",  "Hana",  "Ines",   "Jo",
                                 "Kezia", "Leona", "Maya",  "Nadia",  "Orla"};
  std::mt19937_64 rng(person * 0x9e3779b97f4a7c15ULL + 17);
  accord::v1::Subject s;
  s.set_local_id(local_id);
  auto& f = *s.mutable_fields();
  f["given_name"] = kGiven[rng() % 15];
  f["family_name"] = "Fixture" + Letters(person);
  const absl::CivilDay born =
      absl::CivilDay(1946, 1, 1) + static_cast<int>(rng() % (365 * 62));
  f["date_of_birth"] = absl::FormatCivilTime(born);
  if (rng() % 2 == 0) {
    f["postcode"] = absl::StrFormat("ND%d %d%c%c", 1 + rng() % 20, rng() % 10,
                                    'A' + static_cast<char>(rng() % 20),
                                    'A' + static_cast<char>(rng() % 20));
  }
  return s;
}

// Subject i of agent a is person PersonOf(a, i): 1 in 10 is shared with
// the next agent, 1 in 10 with the previous one.
uint64_t PersonOf(const Options& o, int64_t a, int64_t i) {
  const uint64_t per_agent = static_cast<uint64_t>(o.subjects);
  if (i % 10 == 0) return static_cast<uint64_t>(a) * per_agent + i;
  if (i % 10 == 5) {
    const int64_t prev = (a + o.agents - 1) % o.agents;
    return static_cast<uint64_t>(prev) * per_agent + (i - 5);
  }
  return static_cast<uint64_t>(a) * per_agent + i;
}

template <typename E>
E Pick(std::mt19937_64& rng, const std::vector<std::pair<E, int>>& weighted) {
  int total = 0;
  for (const auto& [e, w] : weighted) total += w;
  int r = static_cast<int>(rng() % static_cast<uint64_t>(total));
  for (const auto& [e, w] : weighted) {
    if (r < w) return e;
    r -= w;
  }
  return weighted.back().first;
}

accord::v1::Engagement EngagementAt(std::mt19937_64& rng, absl::Time day,
                                    const std::string& local,
                                    const std::string& service) {
  using namespace accord::v1;  // NOLINT: the code lists
  Engagement e;
  e.set_subject_local_id(local);
  e.set_service(service);
  *e.mutable_started_at() = ToProtoTime(day);
  if (rng() % 3 != 0)
    *e.mutable_ended_at() =
        ToProtoTime(day + absl::Hours(24 * (7 + rng() % 90)));
  e.set_worker_role("Key worker");
  static const std::vector<std::pair<ReferralSource, int>> kSources = {
      {REFERRAL_SOURCE_UNSPECIFIED, 5},
      {REFERRAL_SOURCE_SELF, 30},
      {REFERRAL_SOURCE_FAMILY_OR_FRIEND, 8},
      {REFERRAL_SOURCE_VOLUNTARY, 12},
      {REFERRAL_SOURCE_POLICE, 18},
      {REFERRAL_SOURCE_COUNCIL, 8},
      {REFERRAL_SOURCE_HEALTH, 10},
      {REFERRAL_SOURCE_EDUCATION, 3},
      {REFERRAL_SOURCE_PROBATION, 1},
      {REFERRAL_SOURCE_HOUSING, 3},
      {REFERRAL_SOURCE_OTHER, 2}};
  e.set_referral_source(Pick(rng, kSources));
  static const char* kNeeds[] = {
      "housing", "isva-support",    "legal-advice", "mental-health",
      "finance", "safety-planning", "employment",   "immigration"};
  const int needs = static_cast<int>(rng() % 4);  // 0 to 3; none: not recorded
  for (int k = 0, first = static_cast<int>(rng() % 8); k < needs; ++k)
    e.add_needs(kNeeds[(first + k * 3) % 8]);
  auto* m = e.mutable_monitoring();
  static const std::vector<std::pair<Ethnicity, int>> kEthnicity = {
      {ETHNICITY_UNSPECIFIED, 6},
      {ETHNICITY_WHITE_BRITISH, 60},
      {ETHNICITY_WHITE_IRISH, 2},
      {ETHNICITY_WHITE_OTHER, 5},
      {ETHNICITY_WHITE_ROMA, 1},
      {ETHNICITY_ASIAN_PAKISTANI, 5},
      {ETHNICITY_ASIAN_INDIAN, 3},
      {ETHNICITY_ASIAN_BANGLADESHI, 2},
      {ETHNICITY_ASIAN_CHINESE, 1},
      {ETHNICITY_ASIAN_OTHER, 1},
      {ETHNICITY_BLACK_AFRICAN, 3},
      {ETHNICITY_BLACK_CARIBBEAN, 2},
      {ETHNICITY_BLACK_OTHER, 1},
      {ETHNICITY_MIXED_WHITE_AND_ASIAN, 1},
      {ETHNICITY_MIXED_WHITE_AND_BLACK_CARIBBEAN, 1},
      {ETHNICITY_MIXED_OTHER, 1},
      {ETHNICITY_OTHER_ARAB, 1},
      {ETHNICITY_OTHER_ANY, 1},
      {ETHNICITY_NOT_STATED, 3}};
  m->set_ethnicity(Pick(rng, kEthnicity));
  static const std::vector<std::pair<Sex, int>> kSex = {{SEX_UNSPECIFIED, 3},
                                                        {SEX_FEMALE, 85},
                                                        {SEX_MALE, 10},
                                                        {SEX_NOT_STATED, 2}};
  m->set_sex(Pick(rng, kSex));
  static const std::vector<std::pair<Disability, int>> kDisability = {
      {DISABILITY_UNSPECIFIED, 15},
      {DISABILITY_YES, 20},
      {DISABILITY_NO, 55},
      {DISABILITY_NOT_STATED, 10}};
  m->set_disability(Pick(rng, kDisability));
  // 60% record an age band; the rest are derived from the date of birth.
  if (rng() % 10 < 6) m->set_age_band(static_cast<AgeBand>(1 + rng() % 9));
  if (rng() % 3 == 0) {
    const int before = 20 + static_cast<int>(rng() % 35);
    auto* b = e.add_outcomes();
    b->set_instrument(OUTCOME_INSTRUMENT_WEMWBS);
    b->set_stage(OUTCOME_STAGE_BEFORE);
    b->set_score(before);
    *b->mutable_measured_at() = ToProtoTime(day);
    if (rng() % 4 != 0) {
      auto* a = e.add_outcomes();
      a->set_instrument(OUTCOME_INSTRUMENT_WEMWBS);
      a->set_stage(OUTCOME_STAGE_AFTER);
      a->set_score(std::min(70, before - 5 + static_cast<int>(rng() % 20)));
      *a->mutable_measured_at() = ToProtoTime(day + absl::Hours(24 * 60));
    }
  }
  return e;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Die("flag " + flag + " needs a value");
    const std::string value = argv[++i];
    auto number = [&](auto* out) {
      if (!absl::SimpleAtoi(value, out) || *out < 0)
        Die(flag + " needs a non-negative number, not '" + value + "'");
    };
    if (flag == "--store") {
      o.store = value;
    } else if (flag == "--linkage-key") {
      o.linkage_key = value;
    } else if (flag == "--agent") {
      number(&o.agent);
    } else if (flag == "--agents") {
      number(&o.agents);
    } else if (flag == "--services") {
      o.services = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (flag == "--subjects") {
      number(&o.subjects);
    } else if (flag == "--engagements") {
      number(&o.engagements);
    } else if (flag == "--from") {
      o.from = value;
    } else if (flag == "--days") {
      number(&o.days);
    } else if (flag == "--seed") {
      number(&o.seed);
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (o.store.empty() || o.linkage_key.empty() || o.services.empty() ||
      o.agents < 1 || o.agent < 0 || o.agent >= o.agents || o.agents < 2 ||
      o.subjects < 10 || o.days < 1) {
    Die("usage: stats_fixture --store FILE --linkage-key FILE --agent A "
        "--agents N --services s1,s2 [--subjects N] [--engagements N] "
        "[--from YYYY-MM-DD] [--days N] [--seed N]");
  }
  absl::CivilDay from_day;
  if (!absl::ParseCivilTime(o.from, &from_day)) Die("--from: not a date");
  const absl::Time from = absl::FromCivil(from_day, absl::UTCTimeZone());

  auto key = linkage::LinkageKey::Load(o.linkage_key);
  if (!key.ok()) Die(std::string(key.status().message()));
  auto store = agent::AgentStore::Open(o.store);
  if (!store.ok()) Die(std::string(store.status().message()));
  const auto start = std::chrono::steady_clock::now();

  auto local_id = [](int64_t i) { return absl::StrCat("P-", i); };
  constexpr int64_t kBatch = 25000;
  for (int64_t base = 0; base < o.subjects; base += kBatch) {
    auto s = (*store)->Write([&](agent::AgentStore::Writer& w) -> absl::Status {
      w.DeferTokens();
      for (int64_t i = base; i < std::min(o.subjects, base + kBatch); ++i) {
        accord::v1::Subject subject =
            PersonAt(PersonOf(o, o.agent, i), local_id(i));
        auto tokens = agent::PrepareSubject(*key, &subject);
        if (!tokens.ok()) return tokens.status();
        if (auto r = w.UpsertSubject(subject, *tokens); !r.ok())
          return r.status();
      }
      return w.WriteDeferredTokens();
    });
    if (!s.ok()) Die(absl::StrCat("writing subjects: ", s.message()));
  }

  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(o.agent));
  // (subject, service, day) names one engagement in the store: draw again
  // rather than update one already written.
  absl::flat_hash_set<std::tuple<int64_t, size_t, int64_t>> taken;
  absl::flat_hash_set<int64_t> people;
  for (int64_t base = 0; base < o.engagements; base += kBatch) {
    auto s = (*store)->Write([&](agent::AgentStore::Writer& w) -> absl::Status {
      for (int64_t j = base; j < std::min(o.engagements, base + kBatch); ++j) {
        int64_t subject, day;
        size_t service;
        do {
          subject =
              static_cast<int64_t>(rng() % static_cast<uint64_t>(o.subjects));
          service = rng() % o.services.size();
          day = static_cast<int64_t>(rng() % static_cast<uint64_t>(o.days));
        } while (!taken.insert({subject, service, day}).second);
        people.insert(subject);
        const accord::v1::Engagement e =
            EngagementAt(rng, from + absl::Hours(24 * day), local_id(subject),
                         o.services[service]);
        if (auto c = agent::CheckEngagement(e); !c.ok()) return c;
        if (auto r = w.RecordEngagement(e); !r.ok()) return r.status();
      }
      return absl::OkStatus();
    });
    if (!s.ok()) Die(absl::StrCat("writing engagements: ", s.message()));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "subjects=%lld engagements=%lld people_with_engagements=%zu "
      "seconds=%.1f\n",
      static_cast<long long>(o.subjects), static_cast<long long>(o.engagements),
      people.size(), secs);
  return 0;
}

}  // namespace
}  // namespace accord::bench

int main(int argc, char** argv) { return accord::bench::Main(argc, argv); }
