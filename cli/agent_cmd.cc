// accordctl agent: the partner's own IT using its agent's local API.

#include "accord/v1/agent.grpc.pb.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "runtime/clock.h"
#include "runtime/status.h"
#include "runtime/textproto.h"

namespace accord::cli {
namespace {

constexpr char kAgentUsage[] =
    R"(usage: accordctl agent SUBCOMMAND --agent HOST:PORT [connection flags]

  load FILE                 load an AgentDataset textproto (subjects, records, consents,
                            engagements) through the local API; stops at the first refusal
  tokens LOCAL_ID           the partnership tokens of a subject you hold
  consents LOCAL_ID         a subject's consent history
  withdraw-consent ID --by NAME
                            record that a consent was withdrawn, now
)";

using Stub = accord::v1::AgentLocal::Stub;

// Calls one local API method, naming the item on failure.
template <typename Req, typename Resp>
absl::Status Call(const Args& args, Stub* stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&,
                                               Resp*),
                  const Req& request, Resp* response) {
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  return FromGrpcStatus((stub->*method)(&ctx, request, response));
}

int Load(const Args& args, Stub* stub, const std::string& file,
         std::ostream& out, std::ostream& err) {
  accord::v1::AgentDataset dataset;
  if (auto s = LoadTextProto(file, &dataset); !s.ok()) return Failure(err, s);
  for (const auto& subject : dataset.subjects()) {
    accord::v1::UpsertSubjectRequest req;
    *req.mutable_subject() = subject;
    accord::v1::UpsertSubjectResponse resp;
    if (auto s = Call(args, stub, &Stub::UpsertSubject, req, &resp); !s.ok()) {
      err << "subject " << Printable(subject.local_id()) << ": ";
      return Failure(err, s);
    }
  }
  for (const auto& record : dataset.records()) {
    accord::v1::UpsertRecordRequest req;
    *req.mutable_record() = record;
    accord::v1::UpsertRecordResponse resp;
    if (auto s = Call(args, stub, &Stub::UpsertRecord, req, &resp); !s.ok()) {
      err << "record " << Printable(record.local_id()) << ": ";
      return Failure(err, s);
    }
  }
  for (const auto& consent : dataset.consents()) {
    accord::v1::RecordConsentRequest req;
    *req.mutable_consent() = consent;
    accord::v1::RecordConsentResponse resp;
    auto s = Call(args, stub, &Stub::RecordConsent, req, &resp);
    if (s.code() == absl::StatusCode::kAlreadyExists)
      continue;  // loaded before
    if (!s.ok()) {
      err << "consent " << Printable(consent.id()) << ": ";
      return Failure(err, s);
    }
  }
  for (const auto& engagement : dataset.engagements()) {
    accord::v1::RecordEngagementRequest req;
    *req.mutable_engagement() = engagement;
    accord::v1::RecordEngagementResponse resp;
    if (auto s = Call(args, stub, &Stub::RecordEngagement, req, &resp);
        !s.ok()) {
      err << "engagement for " << Printable(engagement.subject_local_id())
          << ": ";
      return Failure(err, s);
    }
  }
  out << "loaded " << dataset.subjects_size() << " subjects, "
      << dataset.records_size() << " records, " << dataset.consents_size()
      << " consents, " << dataset.engagements_size() << " engagements\n";
  return 0;
}

}  // namespace

int AgentCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"help", "json"});
  if (!args.ok()) return UsageError(err, args.status(), kAgentUsage);
  if (args->Has("help") || args->positional().empty()) {
    out << kAgentUsage;
    return args->Has("help") ? 0 : 2;
  }
  std::set<std::string> known = kConnectionFlags;
  known.insert({"help", "json", "by"});
  if (auto s = args->CheckKnown(known); !s.ok())
    return UsageError(err, s, kAgentUsage);
  const auto& pos = args->positional();
  if (pos.size() != 2)
    return UsageError(err, absl::InvalidArgumentError("missing argument"),
                      kAgentUsage);
  auto channel = AgentChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::AgentLocal::NewStub(*channel);

  if (pos[0] == "load") return Load(*args, stub.get(), pos[1], out, err);
  if (pos[0] == "tokens") {
    accord::v1::SubjectTokensRequest req;
    req.set_subject_local_id(pos[1]);
    accord::v1::SubjectTokensResponse resp;
    if (auto s = Call(*args, stub.get(), &Stub::SubjectTokens, req, &resp);
        !s.ok()) {
      return Failure(err, s);
    }
    for (const auto& t : resp.tokens()) out << TokenFlag(t) << "\n";
    return 0;
  }
  if (pos[0] == "consents") {
    accord::v1::ListConsentsRequest req;
    req.set_subject_local_id(pos[1]);
    accord::v1::ListConsentsResponse resp;
    if (auto s = Call(*args, stub.get(), &Stub::ListConsents, req, &resp);
        !s.ok()) {
      return Failure(err, s);
    }
    if (args->Has("json")) {
      PrintJson(out, resp);
      return 0;
    }
    for (const auto& c : resp.consents()) {
      out << Printable(c.id()) << " given " << FormatDate(c.given_at()) << " ("
          << Readable(accord::v1::ConsentMethod_Name(c.method()),
                      "CONSENT_METHOD_")
          << ", by " << Printable(c.recorded_by()) << ")"
          << (c.has_expires_at() ? ", expires " + FormatDate(c.expires_at())
                                 : "")
          << (c.has_withdrawn_at()
                  ? ", WITHDRAWN " + FormatDate(c.withdrawn_at())
                  : "")
          << "\n";
    }
    return 0;
  }
  if (pos[0] == "withdraw-consent") {
    accord::v1::WithdrawConsentRequest req;
    req.set_consent_id(pos[1]);
    req.set_recorded_by(args->Get("by"));
    accord::v1::WithdrawConsentResponse resp;
    if (auto s = Call(*args, stub.get(), &Stub::WithdrawConsent, req, &resp);
        !s.ok()) {
      return Failure(err, s);
    }
    out << "consent " << Printable(pos[1]) << " withdrawn\n";
    return 0;
  }
  return UsageError(
      err,
      absl::InvalidArgumentError("unknown agent subcommand '" + pos[0] + "'"),
      kAgentUsage);
}

}  // namespace accord::cli
