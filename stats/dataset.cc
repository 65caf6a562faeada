#include "stats/dataset.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"

namespace accord::stats {
namespace {

using google::protobuf::EnumDescriptor;

constexpr std::array<const char*, kDimensionCount> kDimensionNames = {
    "service",      "referral_source", "need",       "ethnicity",
    "ethnic_group", "age_band",        "disability", "sex"};

// "ETHNICITY_WHITE_BRITISH" -> "white_british" for enum `d` whose values
// start with `prefix`.
std::string CodeOfValue(const EnumDescriptor* d, absl::string_view prefix,
                        int number) {
  if (number == 0) return "";
  const auto* v = d->FindValueByNumber(number);
  if (v == nullptr) return "";
  absl::string_view name = v->name();
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

std::vector<std::string> CodesOf(const EnumDescriptor* d,
                                 absl::string_view prefix) {
  std::vector<std::string> out;
  for (int i = 0; i < d->value_count(); ++i) {
    if (d->value(i)->number() == 0) continue;
    out.push_back(CodeOfValue(d, prefix, d->value(i)->number()));
  }
  return out;
}

// Parses `text` as a code of enum `d` (see dataset.h), never UNSPECIFIED.
absl::StatusOr<int> ParseCode(const EnumDescriptor* d, absl::string_view prefix,
                              absl::string_view list_name,
                              absl::string_view text) {
  std::string norm = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  for (char& c : norm) {
    if (c == '-' || c == ' ') c = '_';
  }
  if (!absl::StartsWith(norm, prefix)) norm = absl::StrCat(prefix, norm);
  const auto* v = d->FindValueByName(norm);
  if (v == nullptr || v->number() == 0) {
    // The value is not repeated: a misspelt code is still personal data.
    return absl::InvalidArgumentError(absl::StrCat(
        "not a code of the ", list_name, " code list; the codes are: ",
        absl::StrJoin(CodesOf(d, prefix), ", ")));
  }
  return v->number();
}

template <typename E>
absl::StatusOr<E> Parse(const EnumDescriptor* d, absl::string_view prefix,
                        absl::string_view list_name, absl::string_view text) {
  auto n = ParseCode(d, prefix, list_name, text);
  if (!n.ok()) return n.status();
  return static_cast<E>(*n);
}

std::vector<std::string> WithNotRecorded(std::vector<std::string> codes) {
  codes.emplace_back(kNotRecorded);
  return codes;
}

int CivilYear(absl::Time t) {
  return static_cast<int>(absl::ToCivilYear(t, absl::UTCTimeZone()).year());
}
int CivilMonth(absl::Time t) {
  return absl::ToCivilMonth(t, absl::UTCTimeZone()).month();
}

// The start of the period holding `t`, and of the next one.
absl::CivilMonth PeriodStart(accord::v1::ReportingPeriod p, absl::Time t) {
  const absl::CivilMonth m = absl::ToCivilMonth(t, absl::UTCTimeZone());
  switch (p) {
    case accord::v1::REPORTING_PERIOD_QUARTER:
      return absl::CivilMonth(m.year(), (m.month() - 1) / 3 * 3 + 1);
    case accord::v1::REPORTING_PERIOD_HALF_YEAR:
      return absl::CivilMonth(m.year(), m.month() <= 6 ? 1 : 7);
    case accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR:
      return absl::CivilMonth(m.month() >= 4 ? m.year() : m.year() - 1, 4);
    default:
      return m;
  }
}
int MonthsIn(accord::v1::ReportingPeriod p) {
  switch (p) {
    case accord::v1::REPORTING_PERIOD_QUARTER:
      return 3;
    case accord::v1::REPORTING_PERIOD_HALF_YEAR:
      return 6;
    case accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR:
      return 12;
    default:
      return 1;
  }
}

}  // namespace

std::optional<Dimension> DimensionNamed(absl::string_view name) {
  for (int i = 0; i < kDimensionCount; ++i) {
    if (name == kDimensionNames[i]) return static_cast<Dimension>(i);
  }
  return std::nullopt;
}

const char* DimensionName(Dimension d) {
  return kDimensionNames[static_cast<int>(d)];
}

std::string DimensionNames() { return absl::StrJoin(kDimensionNames, ", "); }

const std::vector<std::string>& CodeListColumns(Dimension d) {
  static const auto* kColumns = [] {
    auto* c = new std::array<std::vector<std::string>, kDimensionCount>();
    (*c)[static_cast<int>(Dimension::kReferralSource)] = WithNotRecorded(
        CodesOf(accord::v1::ReferralSource_descriptor(), "REFERRAL_SOURCE_"));
    (*c)[static_cast<int>(Dimension::kEthnicity)] = WithNotRecorded(
        CodesOf(accord::v1::Ethnicity_descriptor(), "ETHNICITY_"));
    (*c)[static_cast<int>(Dimension::kEthnicGroup)] = WithNotRecorded(
        {"asian", "black", "mixed", "white", "other", "not_stated"});
    (*c)[static_cast<int>(Dimension::kAgeBand)] =
        WithNotRecorded(CodesOf(accord::v1::AgeBand_descriptor(), "AGE_BAND_"));
    (*c)[static_cast<int>(Dimension::kDisability)] = WithNotRecorded(
        CodesOf(accord::v1::Disability_descriptor(), "DISABILITY_"));
    (*c)[static_cast<int>(Dimension::kSex)] =
        WithNotRecorded(CodesOf(accord::v1::Sex_descriptor(), "SEX_"));
    return c;
  }();
  return (*kColumns)[static_cast<int>(d)];
}

std::string EthnicityCode(accord::v1::Ethnicity e) {
  return CodeOfValue(accord::v1::Ethnicity_descriptor(), "ETHNICITY_", e);
}

std::string EthnicGroupCode(accord::v1::Ethnicity e) {
  using E = accord::v1::Ethnicity;
  if (e == E::ETHNICITY_UNSPECIFIED) return "";
  if (e <= E::ETHNICITY_ASIAN_OTHER) return "asian";
  if (e <= E::ETHNICITY_BLACK_OTHER) return "black";
  if (e <= E::ETHNICITY_MIXED_OTHER) return "mixed";
  if (e <= E::ETHNICITY_WHITE_OTHER) return "white";
  if (e <= E::ETHNICITY_OTHER_ANY) return "other";
  if (e == E::ETHNICITY_NOT_STATED) return "not_stated";
  return "";
}

std::string AgeBandCode(accord::v1::AgeBand a) {
  return CodeOfValue(accord::v1::AgeBand_descriptor(), "AGE_BAND_", a);
}
std::string DisabilityCode(accord::v1::Disability d) {
  return CodeOfValue(accord::v1::Disability_descriptor(), "DISABILITY_", d);
}
std::string SexCode(accord::v1::Sex s) {
  return CodeOfValue(accord::v1::Sex_descriptor(), "SEX_", s);
}
std::string ReferralSourceCode(accord::v1::ReferralSource r) {
  return CodeOfValue(accord::v1::ReferralSource_descriptor(),
                     "REFERRAL_SOURCE_", r);
}
std::string InstrumentCode(accord::v1::OutcomeInstrument i) {
  return CodeOfValue(accord::v1::OutcomeInstrument_descriptor(),
                     "OUTCOME_INSTRUMENT_", i);
}
std::string ReportingPeriodCode(accord::v1::ReportingPeriod p) {
  return CodeOfValue(accord::v1::ReportingPeriod_descriptor(),
                     "REPORTING_PERIOD_", p);
}

absl::StatusOr<accord::v1::Ethnicity> ParseEthnicity(absl::string_view text) {
  return Parse<accord::v1::Ethnicity>(accord::v1::Ethnicity_descriptor(),
                                      "ETHNICITY_", "ethnicity", text);
}
absl::StatusOr<accord::v1::AgeBand> ParseAgeBand(absl::string_view text) {
  return Parse<accord::v1::AgeBand>(accord::v1::AgeBand_descriptor(),
                                    "AGE_BAND_", "age band", text);
}
absl::StatusOr<accord::v1::Disability> ParseDisability(absl::string_view text) {
  return Parse<accord::v1::Disability>(accord::v1::Disability_descriptor(),
                                       "DISABILITY_", "disability", text);
}
absl::StatusOr<accord::v1::Sex> ParseSex(absl::string_view text) {
  return Parse<accord::v1::Sex>(accord::v1::Sex_descriptor(), "SEX_", "sex",
                                text);
}
absl::StatusOr<accord::v1::ReferralSource> ParseReferralSource(
    absl::string_view text) {
  return Parse<accord::v1::ReferralSource>(
      accord::v1::ReferralSource_descriptor(), "REFERRAL_SOURCE_",
      "referral source", text);
}
absl::StatusOr<accord::v1::OutcomeInstrument> ParseInstrument(
    absl::string_view text) {
  return Parse<accord::v1::OutcomeInstrument>(
      accord::v1::OutcomeInstrument_descriptor(), "OUTCOME_INSTRUMENT_",
      "outcome instrument", text);
}
absl::StatusOr<accord::v1::OutcomeStage> ParseOutcomeStage(
    absl::string_view text) {
  return Parse<accord::v1::OutcomeStage>(accord::v1::OutcomeStage_descriptor(),
                                         "OUTCOME_STAGE_", "outcome stage",
                                         text);
}
absl::StatusOr<accord::v1::ReportingPeriod> ParseReportingPeriod(
    absl::string_view text) {
  return Parse<accord::v1::ReportingPeriod>(
      accord::v1::ReportingPeriod_descriptor(), "REPORTING_PERIOD_",
      "reporting period", text);
}

accord::v1::AgeBand AgeBandAt(absl::string_view dob, absl::Time at) {
  int y = 0, m = 0, d = 0;
  if (dob.size() != 10 || dob[4] != '-' || dob[7] != '-' ||
      !absl::SimpleAtoi(dob.substr(0, 4), &y) ||
      !absl::SimpleAtoi(dob.substr(5, 2), &m) ||
      !absl::SimpleAtoi(dob.substr(8, 2), &d) || m < 1 || m > 12 || d < 1 ||
      d > 31) {
    return accord::v1::AGE_BAND_UNSPECIFIED;
  }
  const absl::CivilDay on = absl::ToCivilDay(at, absl::UTCTimeZone());
  int age = static_cast<int>(on.year()) - y;
  if (on.month() < m || (on.month() == m && on.day() < d)) --age;
  using A = accord::v1::AgeBand;
  if (age < 0) return A::AGE_BAND_UNSPECIFIED;
  if (age < 16) return A::AGE_BAND_UNDER_16;
  if (age < 18) return A::AGE_BAND_16_17;
  if (age < 25) return A::AGE_BAND_18_24;
  if (age < 35) return A::AGE_BAND_25_34;
  if (age < 45) return A::AGE_BAND_35_44;
  if (age < 55) return A::AGE_BAND_45_54;
  if (age < 65) return A::AGE_BAND_55_64;
  return A::AGE_BAND_65_AND_OVER;
}

ScoreRange RangeOf(accord::v1::OutcomeInstrument i) {
  switch (i) {
    case accord::v1::OUTCOME_INSTRUMENT_WEMWBS:
      return {14, 70};
    case accord::v1::OUTCOME_INSTRUMENT_SWEMWBS:
      return {7, 35};
    case accord::v1::OUTCOME_INSTRUMENT_WORK_STAR:
      return {7, 70};
    default:
      return {0, 0};
  }
}

absl::Status CheckScore(accord::v1::OutcomeInstrument i, double score) {
  const ScoreRange r = RangeOf(i);
  if (r.max == 0) {
    return absl::InvalidArgumentError(
        "the outcome instrument is not given or not known");
  }
  if (!(score >= r.min && score <= r.max)) {  // also refuses NaN
    return absl::InvalidArgumentError(absl::StrFormat(
        "a %s score lies between %g and %g", InstrumentCode(i), r.min, r.max));
  }
  return absl::OkStatus();
}

std::string CodeOf(Dimension d, const accord::v1::Engagement& e,
                   accord::v1::AgeBand age_band) {
  std::string code;
  switch (d) {
    case Dimension::kReferralSource:
      code = ReferralSourceCode(e.referral_source());
      break;
    case Dimension::kEthnicity:
      code = EthnicityCode(e.monitoring().ethnicity());
      break;
    case Dimension::kEthnicGroup:
      code = EthnicGroupCode(e.monitoring().ethnicity());
      break;
    case Dimension::kAgeBand:
      code = AgeBandCode(age_band);
      break;
    case Dimension::kDisability:
      code = DisabilityCode(e.monitoring().disability());
      break;
    case Dimension::kSex:
      code = SexCode(e.monitoring().sex());
      break;
    case Dimension::kService:
    case Dimension::kNeed:
      return "";
  }
  return code.empty() ? std::string(kNotRecorded) : code;
}

namespace {

// For each code-list dimension: enum number -> column (not_recorded for
// UNSPECIFIED and numbers the enum does not have).
const std::array<std::vector<int>, kDimensionCount>& ColumnTables() {
  static const auto* kTables = [] {
    auto* t = new std::array<std::vector<int>, kDimensionCount>();
    auto fill = [&](Dimension d, const EnumDescriptor* desc, auto code_of) {
      const auto& columns = CodeListColumns(d);
      int most = 0;
      for (int i = 0; i < desc->value_count(); ++i)
        most = std::max(most, desc->value(i)->number());
      auto& v = (*t)[static_cast<int>(d)];
      v.assign(static_cast<size_t>(most) + 1,
               static_cast<int>(columns.size()) - 1);
      for (int n = 0; n <= most; ++n) {
        const std::string code = code_of(n);
        for (size_t c = 0; c < columns.size(); ++c) {
          if (!code.empty() && columns[c] == code) v[n] = static_cast<int>(c);
        }
      }
    };
    using namespace accord::v1;  // NOLINT(build/namespaces): enum casts only
    fill(Dimension::kReferralSource, ReferralSource_descriptor(), [](int n) {
      return ReferralSourceCode(static_cast<ReferralSource>(n));
    });
    fill(Dimension::kEthnicity, Ethnicity_descriptor(),
         [](int n) { return EthnicityCode(static_cast<Ethnicity>(n)); });
    fill(Dimension::kEthnicGroup, Ethnicity_descriptor(),
         [](int n) { return EthnicGroupCode(static_cast<Ethnicity>(n)); });
    fill(Dimension::kAgeBand, AgeBand_descriptor(),
         [](int n) { return AgeBandCode(static_cast<AgeBand>(n)); });
    fill(Dimension::kDisability, Disability_descriptor(),
         [](int n) { return DisabilityCode(static_cast<Disability>(n)); });
    fill(Dimension::kSex, Sex_descriptor(),
         [](int n) { return SexCode(static_cast<Sex>(n)); });
    return t;
  }();
  return *kTables;
}

}  // namespace

int ColumnOf(Dimension d, const accord::v1::Engagement& e,
             accord::v1::AgeBand age_band) {
  int n = 0;
  switch (d) {
    case Dimension::kReferralSource:
      n = e.referral_source();
      break;
    case Dimension::kEthnicity:
    case Dimension::kEthnicGroup:
      n = e.monitoring().ethnicity();
      break;
    case Dimension::kAgeBand:
      n = age_band;
      break;
    case Dimension::kDisability:
      n = e.monitoring().disability();
      break;
    case Dimension::kSex:
      n = e.monitoring().sex();
      break;
    case Dimension::kService:
    case Dimension::kNeed:
      return -1;
  }
  const auto& v = ColumnTables()[static_cast<int>(d)];
  return n >= 0 && static_cast<size_t>(n) < v.size() ? v[n] : v[0];
}

std::string PeriodLabel(accord::v1::ReportingPeriod p, absl::Time t) {
  const absl::CivilMonth s = PeriodStart(p, t);
  const int y = static_cast<int>(s.year());
  switch (p) {
    case accord::v1::REPORTING_PERIOD_QUARTER:
      return absl::StrFormat("%04d-Q%d", y, (s.month() - 1) / 3 + 1);
    case accord::v1::REPORTING_PERIOD_HALF_YEAR:
      return absl::StrFormat("%04d-H%d", y, s.month() <= 6 ? 1 : 2);
    case accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR:
      return absl::StrFormat("%04d-%02d", y, (y + 1) % 100);
    default:
      return absl::StrFormat("%04d-%02d", y, s.month());
  }
}

std::vector<Period> PeriodsBetween(accord::v1::ReportingPeriod p,
                                   absl::Time from, absl::Time until) {
  std::vector<Period> out;
  if (from >= until) return out;
  absl::CivilMonth start = PeriodStart(p, from);
  while (true) {
    const absl::Time s = absl::FromCivil(start, absl::UTCTimeZone());
    if (s >= until || static_cast<int>(out.size()) > kMaxPeriods) break;
    const absl::CivilMonth next = start + MonthsIn(p);
    out.push_back(
        {PeriodLabel(p, s), s, absl::FromCivil(next, absl::UTCTimeZone())});
    start = next;
  }
  return out;
}

absl::Status CheckRange(accord::v1::ReportingPeriod p, absl::Time from,
                        absl::Time until) {
  if (p == accord::v1::REPORTING_PERIOD_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        "field period: required (month, quarter, half_year or "
        "financial_year)");
  }
  if (from >= until) {
    return absl::InvalidArgumentError(
        "field range: 'from' must be before 'until'");
  }
  if (CivilYear(until) - CivilYear(from) > kMaxRangeYears ||
      (CivilYear(until) - CivilYear(from) == kMaxRangeYears &&
       CivilMonth(until) > CivilMonth(from))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field range: a run covers at most ", kMaxRangeYears, " years"));
  }
  if (PeriodsBetween(p, from, until).size() > kMaxPeriods) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field range: a run covers at most ", kMaxPeriods, " periods"));
  }
  return absl::OkStatus();
}

}  // namespace accord::stats
