// accordctl stats: the partnership's monitoring figures (docs/STATISTICS.md).

#include <iomanip>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "runtime/clock.h"
#include "runtime/status.h"
#include "stats/dataset.h"

namespace accord::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: accordctl stats --purpose PURPOSE --from DATE --until DATE [flags]

The partnership's monitoring figures: new engagements per partner and
reporting period, unique people across partners, and (when asked) data
completeness and outcome change. Small numbers show as '*'.
  --from DATE --until DATE  engagements that started from DATE until (not on) DATE, YYYY-MM-DD
  --period P                month | quarter (default) | half_year | financial_year
  --by DIM                  a breakdown, repeatable or comma-separated: service,
                            referral_source, need, ethnicity, ethnic_group, age_band,
                            disability, sex
  --holder ORG              count only this partner (repeatable)
  --completeness            the share of engagements with each field recorded
  --outcomes                the change between before and after outcome measures
Output: a table per period and breakdown; --csv for one CSV (section, period,
dimension, org, column, value); --json for the raw answer.
)";

absl::StatusOr<google::protobuf::Timestamp> ParseDay(const std::string& flag,
                                                     const std::string& s) {
  absl::CivilDay day;
  if (!absl::ParseCivilTime(s, &day)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", s, "' is not a date (YYYY-MM-DD)"));
  }
  return ToProtoTime(absl::FromCivil(day, absl::UTCTimeZone()));
}

std::string CellText(const accord::v1::StatisticsCell& c) {
  return c.suppressed() ? "*" : absl::StrCat(c.count());
}

std::string OrgName(const std::string& org) {
  return org == "all" ? "All partners" : Printable(org);
}

void PrintTables(std::ostream& out, const accord::v1::StatisticsResponse& r) {
  for (const auto& t : r.tables()) {
    out << "\n"
        << Printable(t.period()) << "  new engagements"
        << (t.dimension().empty() ? "" : " by " + Printable(t.dimension()))
        << "\n";
    std::vector<size_t> width;
    width.push_back(12);
    for (const auto& row : t.rows())
      width[0] = std::max(width[0], OrgName(row.org()).size());
    for (const auto& c : t.columns())
      width.push_back(std::max<size_t>(5, Printable(c).size()));
    out << "  " << std::left << std::setw(static_cast<int>(width[0])) << ""
        << std::right;
    for (int c = 0; c < t.columns_size(); ++c)
      out << "  " << std::setw(static_cast<int>(width[c + 1]))
          << Printable(t.columns(c));
    out << "\n";
    for (const auto& row : t.rows()) {
      out << "  " << std::left << std::setw(static_cast<int>(width[0]))
          << OrgName(row.org()) << std::right;
      for (int c = 0; c < row.cells_size() && c < t.columns_size(); ++c)
        out << "  " << std::setw(static_cast<int>(width[c + 1]))
            << CellText(row.cells(c));
      out << "\n";
    }
  }
  if (r.people_size() > 0) {
    out << "\nUnique people (a person known to several partners counts once in "
           "All partners)\n";
    for (const auto& p : r.people())
      out << "  " << Printable(p.period()) << "  " << std::left << std::setw(20)
          << OrgName(p.org()) << std::right << "  " << CellText(p.people())
          << "\n";
  }
  if (r.completeness_size() > 0) {
    out << "\nData completeness (share of engagements with the field "
           "recorded)\n";
    for (const auto& c : r.completeness())
      out << "  " << std::left << std::setw(20) << OrgName(c.org())
          << std::setw(16) << Printable(c.field()) << std::right
          << (c.suppressed() ? std::string("*")
                             : absl::StrCat(c.recorded_percent(), "%"))
          << "\n";
  }
  if (r.outcomes_size() > 0) {
    out << "\nOutcome change (people with a before and an after measure)\n";
    for (const auto& o : r.outcomes()) {
      out << "  " << std::left << std::setw(20) << OrgName(o.org())
          << std::setw(10) << stats::InstrumentCode(o.instrument())
          << std::right << "people " << CellText(o.people());
      if (!o.suppressed())
        out << ", mean change " << o.mean_change() << ", improved "
            << o.improved_percent() << "%";
      out << "\n";
    }
  }
  out << "\nCounts of 1 to " << r.suppression_threshold()
      << " are shown as *, with others hidden so they cannot be worked out; "
         "counts are rounded to the nearest "
      << r.rounding() << ".\nPartners counted: ";
  for (int i = 0; i < r.holders_included_size(); ++i)
    out << (i ? ", " : "") << Printable(r.holders_included(i));
  out << "\n";
  for (const auto& m : r.holders_missing())
    out << "Not counted: " << Printable(m.holder()) << " ("
        << Readable(accord::v1::HolderStatus_Name(m.status()), "HOLDER_STATUS_")
        << ": " << Printable(m.detail()) << ")\n";
  out << "Audit entry #" << r.audit_seq() << ", request " << r.request_id()
      << "\n";
}

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void PrintCsv(std::ostream& out, const accord::v1::StatisticsResponse& r) {
  out << "section,period,dimension,org,column,value\n";
  auto line = [&](const std::string& section, const std::string& period,
                  const std::string& dim, const std::string& org,
                  const std::string& column, const std::string& value) {
    out << section << "," << Csv(period) << "," << Csv(dim) << "," << Csv(org)
        << "," << Csv(column) << "," << value << "\n";
  };
  for (const auto& t : r.tables())
    for (const auto& row : t.rows())
      for (int c = 0; c < row.cells_size() && c < t.columns_size(); ++c)
        line("engagements", t.period(), t.dimension(), row.org(), t.columns(c),
             CellText(row.cells(c)));
  for (const auto& p : r.people())
    line("people", p.period(), "", p.org(), "people", CellText(p.people()));
  for (const auto& c : r.completeness())
    line("completeness", "", c.field(), c.org(), "recorded_percent",
         c.suppressed() ? "*" : absl::StrCat(c.recorded_percent()));
  for (const auto& o : r.outcomes()) {
    const std::string inst = stats::InstrumentCode(o.instrument());
    line("outcomes", "", inst, o.org(), "people", CellText(o.people()));
    line("outcomes", "", inst, o.org(), "mean_change",
         o.suppressed() ? "*" : absl::StrCat(o.mean_change()));
    line("outcomes", "", inst, o.org(), "improved_percent",
         o.suppressed() ? "*" : absl::StrCat(o.improved_percent()));
  }
}

}  // namespace

int StatsCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args =
      Args::Parse(argv, {"completeness", "outcomes", "csv", "json", "help"});
  if (!args.ok()) return UsageError(err, args.status(), kUsage);
  if (args->Has("help")) {
    out << kUsage;
    return 0;
  }
  accord::v1::StatisticsRequest request;
  auto purpose = args->Require("purpose");
  if (!purpose.ok()) return UsageError(err, purpose.status(), kUsage);
  request.set_purpose(*purpose);
  for (const char* flag : {"from", "until"}) {
    auto value = args->Require(flag);
    if (!value.ok()) return UsageError(err, value.status(), kUsage);
    auto ts = ParseDay(flag, *value);
    if (!ts.ok()) return UsageError(err, ts.status(), kUsage);
    *(std::string(flag) == "from" ? request.mutable_range()->mutable_from()
                                  : request.mutable_range()->mutable_until()) =
        *ts;
  }
  auto period = stats::ParseReportingPeriod(args->Get("period", "quarter"));
  if (!period.ok()) {
    return UsageError(err,
                      absl::InvalidArgumentError(absl::StrCat(
                          "--period: ", period.status().message())),
                      kUsage);
  }
  request.set_period(*period);
  for (const auto& by : args->GetAll("by"))
    for (absl::string_view d : absl::StrSplit(by, ',', absl::SkipEmpty()))
      request.add_dimensions(std::string(d));
  for (const auto& h : args->GetAll("holder")) request.add_holders(h);
  request.set_completeness(args->Has("completeness"));
  request.set_outcomes(args->Has("outcomes"));

  auto channel = GatewayChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::Gateway::NewStub(*channel);
  grpc::ClientContext ctx;
  PrepareContext(*args, &ctx);
  accord::v1::StatisticsResponse response;
  const grpc::Status status = stub->Statistics(&ctx, request, &response);
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  if (args->Has("json")) {
    PrintJson(out, response);
  } else if (args->Has("csv")) {
    PrintCsv(out, response);
  } else {
    PrintTables(out, response);
  }
  return 0;
}

}  // namespace accord::cli
