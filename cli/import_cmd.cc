// accordctl import: bulk-load subjects, records, consent and engagements from
// a CSV file (as a spreadsheet saves it) or JSON Lines into your own agent,
// and show which rows were rejected and why.

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "accord/v1/agent.grpc.pb.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "runtime/status.h"

namespace accord::cli {
namespace {

constexpr char kImportUsage[] =
    R"(usage: accordctl import FILE [--format csv|jsonl] --agent HOST:PORT [connection flags]

Loads FILE into your organisation's agent through its local API. One row per
person (or per extra record, consent or engagement of a person); the columns
are described in docs/AGENT.md. Each row is applied whole or not at all; rows
that cannot be applied are listed with their row number (as your spreadsheet
numbers them: the header is row 1) and the column at fault.

  --format csv|jsonl  the file's format (default: from the file name, .csv or
                      .jsonl/.ndjson)
  --json              print the report as JSON

Exit status: 0 every row applied, 1 some rows rejected or the import failed,
2 usage error.
)";

constexpr size_t kChunkBytes = 64 * 1024;

absl::StatusOr<accord::v1::ImportFormat> FormatOf(const Args& args,
                                                  const std::string& file) {
  std::string f = absl::AsciiStrToLower(args.Get("format"));
  if (f.empty()) {
    const std::string lower = absl::AsciiStrToLower(file);
    if (absl::EndsWith(lower, ".csv")) return accord::v1::IMPORT_FORMAT_CSV;
    if (absl::EndsWith(lower, ".jsonl") || absl::EndsWith(lower, ".ndjson"))
      return accord::v1::IMPORT_FORMAT_JSONL;
    return absl::InvalidArgumentError(
        "--format: cannot tell the format from the file name; give --format "
        "csv or --format jsonl");
  }
  if (f == "csv") return accord::v1::IMPORT_FORMAT_CSV;
  if (f == "jsonl" || f == "ndjson") return accord::v1::IMPORT_FORMAT_JSONL;
  return absl::InvalidArgumentError("--format: must be csv or jsonl");
}

void PrintReport(std::ostream& out, const accord::v1::ImportReport& r) {
  out << "read " << r.rows_read() << " rows: " << r.rows_applied()
      << " applied, " << r.rows_rejected() << " rejected\n"
      << "  subjects: " << r.subjects_created() << " new, "
      << r.subjects_updated() << " updated; records: " << r.records_written()
      << "; consents: " << r.consents_recorded()
      << " recorded; engagements: " << r.engagements_written() << "\n";
  if (r.rejected_size() == 0) return;
  out << "rejected rows (nothing of these rows was written):\n";
  for (const auto& x : r.rejected())
    out << "  row " << x.row() << ": " << Printable(x.reason()) << "\n";
  if (r.rows_rejected() > static_cast<uint64_t>(r.rejected_size())) {
    out << "  ... and " << r.rows_rejected() - r.rejected_size()
        << " more rejected rows not listed\n";
  }
}

}  // namespace

int ImportCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"help", "json"});
  if (!args.ok()) return UsageError(err, args.status(), kImportUsage);
  if (args->Has("help")) {
    out << kImportUsage;
    return 0;
  }
  std::set<std::string> known = kConnectionFlags;
  known.insert({"help", "json", "format"});
  if (auto s = args->CheckKnown(known); !s.ok())
    return UsageError(err, s, kImportUsage);
  if (args->positional().size() != 1) {
    return UsageError(err, absl::InvalidArgumentError("give exactly one FILE"),
                      kImportUsage);
  }
  const std::string file = args->positional()[0];
  auto format = FormatOf(*args, file);
  if (!format.ok()) return UsageError(err, format.status(), kImportUsage);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Failure(err, absl::NotFoundError(file + ": cannot be read"));
  }
  auto channel = AgentChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::AgentLocal::NewStub(*channel);

  grpc::ClientContext ctx;
  PrepareContext(*args, &ctx);
  // A large file takes longer than one request's default deadline.
  if (!args->Has("timeout")) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  }
  accord::v1::ImportReport report;
  auto writer = stub->Import(&ctx, &report);
  accord::v1::ImportRow msg;
  msg.set_format(*format);
  std::string buf(kChunkBytes, '\0');
  bool first = true;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0 && !first) break;
    msg.set_chunk(buf.data(), static_cast<size_t>(n));
    if (!writer->Write(msg)) break;  // the agent stopped early; see Finish
    msg.clear_format();
    first = false;
  }
  if (in.bad()) {
    ctx.TryCancel();
    (void)writer->Finish();
    return Failure(err, absl::DataLossError(file + ": read failed"));
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    err << file << ": ";
    return Failure(err, FromGrpcStatus(status));
  }
  if (args->Has("json")) {
    PrintJson(out, report);
  } else {
    PrintReport(out, report);
  }
  return report.rows_rejected() == 0 ? 0 : 1;
}

}  // namespace accord::cli
