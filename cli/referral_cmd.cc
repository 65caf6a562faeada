// accordctl referral: send a referral through your agent, read the inbox and
// outbox, follow a referral (and its chain) at the gateway, change its status.

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "runtime/status.h"

namespace accord::cli {
namespace {

constexpr char kReferralUsage[] =
    R"(usage: accordctl referral SUBCOMMAND [flags] [connection flags]

  send --subject LOCAL_ID --to ORG [--service ID] [--purpose P] [--urgency U]
       [--contact FIELD=VALUE]... [--need NEED]... [--summary TEXT]
       [--idempotency-key KEY] [--after REFERRAL_ID]
                     refer a person your agent holds (sealed to the receiver's key);
                     --purpose defaults to "referral", --urgency to routine
                     (routine, soon, immediate); --after continues a referral you received
  inbox [--state S]  referrals sent to you, with what they carry
  outbox [--state S] referrals you sent, with their status
  status ID [--chain]
                     a referral as the gateway holds it; --chain adds the referrals
                     before and after it for the same person
  update ID --state S [--reason TEXT] [--outcome O]
                     acknowledged, accepted, declined (--reason), engaged,
                     closed (--outcome need-met, need-partly-met, need-not-met, withdrew),
                     withdrawn (referrer only, --reason)
  watch [--box inbox|outbox] [--count N] [--after-cursor C] [--heartbeat SECONDS]
                     print the referrals open now, then arrivals and status changes
                     as they happen, until interrupted (or --count events, or
                     --timeout); each line ends with its cursor: after a disconnect,
                     --after-cursor C prints every change since C, then carries on.
                     The agent sends a heartbeat every --heartbeat seconds (15) while
                     nothing happens, so an idle watch stays connected

send, inbox, outbox, update and watch use your agent (--agent); status uses the gateway.
Add --json for machine-readable output (a watch then prints its heartbeats too).
Calls other than watch give up after --timeout seconds (ACCORD_TIMEOUT, default 30).
)";

std::string StateText(accord::v1::ReferralState s) {
  return Readable(accord::v1::ReferralState_Name(s), "REFERRAL_STATE_");
}

absl::StatusOr<accord::v1::ReferralState> ParseState(const std::string& s) {
  accord::v1::ReferralState state;
  const std::string name =
      absl::StrCat("REFERRAL_STATE_",
                   absl::AsciiStrToUpper(absl::StrReplaceAll(s, {{"-", "_"}})));
  if (!accord::v1::ReferralState_Parse(name, &state) ||
      state == accord::v1::REFERRAL_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("--state: '", s, "' is not a referral state"));
  }
  return state;
}

void PrintReferral(std::ostream& out, const accord::v1::Referral& r,
                   const accord::v1::ReferralContent* content) {
  const auto p = [](const std::string& v) { return Printable(v); };
  out << p(r.id()) << "  " << p(r.from_org()) << " -> " << p(r.to_org())
      << (r.to_service().empty() ? "" : "/" + p(r.to_service())) << "  "
      << StateText(r.state()) << "\n";
  out << "  purpose " << p(r.purpose()) << ", urgency "
      << Readable(accord::v1::Urgency_Name(r.urgency()), "URGENCY_");
  if (!r.rule_id().empty())
    out << ", under " << p(r.agreement_id()) << " rule " << p(r.rule_id());
  out << "\n";
  if (!r.previous_referral_id().empty())
    out << "  continues " << p(r.previous_referral_id()) << "\n";
  if (!r.consent_reference().empty())
    out << "  consent " << p(r.consent_reference()) << "\n";
  if (r.has_deliver_by() && r.state() == accord::v1::REFERRAL_STATE_SENT)
    out << "  to be delivered by " << FormatTime(r.deliver_by()) << "\n";
  for (const auto& h : r.history()) {
    out << "  " << FormatTime(h.at()) << "  " << StateText(h.state());
    if (!h.by_org().empty()) out << " by " << p(h.by_org());
    if (!h.actor().user_id().empty())
      out << " (" << p(h.actor().user_id()) << ")";
    if (h.outcome() != accord::v1::OUTCOME_UNSPECIFIED)
      out << ": "
          << Readable(accord::v1::Outcome_Name(h.outcome()), "OUTCOME_");
    if (!h.reason().empty()) out << ": " << p(h.reason());
    out << "\n";
  }
  if (content != nullptr && content->ByteSizeLong() > 0) {
    out << "  content (opened by this agent):\n";
    for (const auto& [k, v] : content->contact_details())
      out << "    " << p(k) << ": " << p(v) << "\n";
    if (content->needs_size() > 0) {
      out << "    needs: " << p(absl::StrJoin(content->needs(), ", ")) << "\n";
    }
    if (!content->case_summary().empty()) {
      out << "    case summary: "
          << PrintableBlock(content->case_summary(), "      ") << "\n";
    }
    if (content->has_referrer_contact()) {
      const auto& c = content->referrer_contact();
      out << "    referrer contact: " << p(c.name())
          << (c.role().empty() ? "" : ", " + p(c.role()))
          << (c.phone().empty() ? "" : ", " + p(c.phone()))
          << (c.email().empty() ? "" : ", " + p(c.email())) << "\n";
    }
  }
}

int Send(const Args& args, accord::v1::AgentLocal::Stub* stub,
         std::ostream& out, std::ostream& err) {
  accord::v1::LocalSendReferralRequest req;
  auto subject = args.Require("subject");
  if (!subject.ok()) return UsageError(err, subject.status(), kReferralUsage);
  auto to = args.Require("to");
  if (!to.ok()) return UsageError(err, to.status(), kReferralUsage);
  req.set_subject_local_id(*subject);
  req.set_to_org(*to);
  req.set_to_service(args.Get("service"));
  req.set_purpose(args.Get("purpose", "referral"));
  accord::v1::Urgency urgency;
  if (!accord::v1::Urgency_Parse(
          absl::StrCat("URGENCY_",
                       absl::AsciiStrToUpper(args.Get("urgency", "routine"))),
          &urgency) ||
      urgency == accord::v1::URGENCY_UNSPECIFIED) {
    return UsageError(err,
                      absl::InvalidArgumentError(
                          "--urgency: give routine, soon or immediate"),
                      kReferralUsage);
  }
  req.set_urgency(urgency);
  auto* content = req.mutable_content();
  for (const auto& c : args.GetAll("contact")) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(c, absl::MaxSplits('=', 1));
    if (kv.first.empty()) {
      return UsageError(err,
                        absl::InvalidArgumentError(
                            "--contact: give FIELD=VALUE, e.g. phone=07700..."),
                        kReferralUsage);
    }
    (*content->mutable_contact_details())[kv.first] = kv.second;
  }
  for (const auto& n : args.GetAll("need")) content->add_needs(n);
  content->set_case_summary(args.Get("summary"));
  req.set_idempotency_key(args.Get("idempotency-key"));
  req.set_previous_referral_id(args.Get("after"));
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  accord::v1::SendReferralResponse resp;
  if (auto s = FromGrpcStatus(stub->SendReferral(&ctx, req, &resp)); !s.ok())
    return Failure(err, s);
  if (args.Has("json")) {
    PrintJson(out, resp);
  } else {
    out << "referral " << Printable(resp.referral_id()) << " to "
        << Printable(*to) << ": " << StateText(resp.state()) << " (audit entry "
        << resp.audit_seq() << ")\n";
  }
  return 0;
}

int List(const Args& args, accord::v1::AgentLocal::Stub* stub,
         accord::v1::ReferralBox box, std::ostream& out, std::ostream& err) {
  accord::v1::ListReferralsRequest req;
  req.set_box(box);
  if (args.Has("state")) {
    auto state = ParseState(args.Get("state"));
    if (!state.ok()) return UsageError(err, state.status(), kReferralUsage);
    req.set_state(*state);
  }
  int shown = 0;
  do {
    grpc::ClientContext ctx;
    PrepareContext(args, &ctx);
    accord::v1::ListReferralsResponse resp;
    if (auto s = FromGrpcStatus(stub->ListReferrals(&ctx, req, &resp)); !s.ok())
      return Failure(err, s);
    for (const auto& v : resp.referrals()) {
      if (args.Has("json")) {
        PrintJson(out, v);
      } else {
        PrintReferral(out, v.referral(), &v.content());
      }
      ++shown;
    }
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  if (shown == 0 && !args.Has("json")) out << "(none)\n";
  return 0;
}

int ShowStatus(const Args& args, const std::string& id, std::ostream& out,
               std::ostream& err) {
  auto channel = GatewayChannel(args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::Gateway::NewStub(*channel);
  accord::v1::GetReferralRequest req;
  req.set_referral_id(id);
  req.set_include_chain(args.Has("chain"));
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  accord::v1::GetReferralResponse resp;
  if (auto s = FromGrpcStatus(stub->GetReferral(&ctx, req, &resp)); !s.ok())
    return Failure(err, s);
  if (args.Has("json")) {
    PrintJson(out, resp);
    return 0;
  }
  PrintReferral(out, resp.referral(), nullptr);
  if (resp.chain_size() > 0) {
    out << "chain for this person (" << resp.chain_size() << " referrals):\n";
    for (const auto& c : resp.chain()) {
      out << "  " << Printable(c.id()) << "  " << Printable(c.from_org())
          << " -> " << Printable(c.to_org()) << "  " << StateText(c.state())
          << (c.id() == id ? "  <- this" : "") << "\n";
    }
  }
  return 0;
}

int Update(const Args& args, accord::v1::AgentLocal::Stub* stub,
           const std::string& id, std::ostream& out, std::ostream& err) {
  accord::v1::UpdateReferralRequest req;
  req.set_referral_id(id);
  auto state_flag = args.Require("state");
  if (!state_flag.ok())
    return UsageError(err, state_flag.status(), kReferralUsage);
  auto state = ParseState(*state_flag);
  if (!state.ok()) return UsageError(err, state.status(), kReferralUsage);
  req.mutable_status()->set_state(*state);
  req.mutable_status()->set_reason(args.Get("reason"));
  if (args.Has("outcome")) {
    accord::v1::Outcome outcome;
    const std::string name =
        absl::StrCat("OUTCOME_", absl::AsciiStrToUpper(absl::StrReplaceAll(
                                     args.Get("outcome"), {{"-", "_"}})));
    if (!accord::v1::Outcome_Parse(name, &outcome) ||
        outcome == accord::v1::OUTCOME_UNSPECIFIED) {
      return UsageError(err,
                        absl::InvalidArgumentError(
                            "--outcome: give need-met, "
                            "need-partly-met, need-not-met or withdrew"),
                        kReferralUsage);
    }
    req.mutable_status()->set_outcome(outcome);
  }
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  accord::v1::UpdateReferralResponse resp;
  if (auto s = FromGrpcStatus(stub->UpdateReferral(&ctx, req, &resp)); !s.ok())
    return Failure(err, s);
  if (args.Has("json")) {
    PrintJson(out, resp);
  } else {
    out << "referral " << Printable(id) << ": "
        << StateText(resp.referral().state()) << " (audit entry "
        << resp.audit_seq() << ")\n";
  }
  return 0;
}

int Watch(const Args& args, accord::v1::AgentLocal::Stub* stub,
          std::ostream& out, std::ostream& err) {
  accord::v1::WatchReferralsRequest req;
  const std::string box = args.Get("box");
  if (box == "inbox") {
    req.set_box(accord::v1::REFERRAL_BOX_INBOX);
  } else if (box == "outbox") {
    req.set_box(accord::v1::REFERRAL_BOX_OUTBOX);
  } else if (!box.empty()) {
    return UsageError(err, absl::InvalidArgumentError("--box: inbox or outbox"),
                      kReferralUsage);
  }
  if (args.Has("after-cursor")) {
    uint64_t cursor = 0;
    if (!absl::SimpleAtoi(args.Get("after-cursor"), &cursor)) {
      return UsageError(
          err,
          absl::InvalidArgumentError(
              "--after-cursor: give the cursor printed with an earlier event"),
          kReferralUsage);
    }
    req.set_after_cursor(cursor);
  }
  if (args.Has("heartbeat")) {
    int seconds = 0;
    if (!absl::SimpleAtoi(args.Get("heartbeat"), &seconds) || seconds <= 0) {
      return UsageError(
          err, absl::InvalidArgumentError("--heartbeat: give whole seconds"),
          kReferralUsage);
    }
    req.mutable_heartbeat_interval()->set_seconds(seconds);
  }
  const int count = std::atoi(args.Get("count", "0").c_str());
  grpc::ClientContext ctx;
  // A watch runs until --count events, an explicit --timeout or an
  // interrupt; keep-alive pings and the agent's heartbeats hold it open.
  PrepareContext(args, &ctx, /*until_ended=*/true);
  auto reader = stub->WatchReferrals(&ctx, req);
  accord::v1::ReferralEvent event;
  int seen = 0;
  bool caught_up = false;
  while (reader->Read(&event)) {
    const bool heartbeat =
        event.kind() == accord::v1::REFERRAL_EVENT_KIND_HEARTBEAT;
    if (args.Has("json")) {
      PrintJson(out, event);
    } else if (heartbeat) {
      if (!caught_up) {
        out << "(up to date at cursor " << event.cursor()
            << "; watching for changes)\n";
      }
    } else {
      const auto& r = event.referral().referral();
      out << (event.box() == accord::v1::REFERRAL_BOX_INBOX ? "inbox "
                                                            : "outbox")
          << "  " << Printable(r.id()) << "  " << Printable(r.from_org())
          << " -> " << Printable(r.to_org()) << "  " << StateText(r.state())
          << "  ["
          << (event.kind() == accord::v1::REFERRAL_EVENT_KIND_CURRENT
                  ? "open now, "
                  : "")
          << "cursor " << event.cursor() << "]\n";
    }
    out.flush();
    if (heartbeat) {
      caught_up = true;
      continue;
    }
    if (count > 0 && ++seen >= count) {
      ctx.TryCancel();
      break;
    }
  }
  auto status = reader->Finish();
  if (count > 0 && seen >= count) return 0;
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  return 0;
}

}  // namespace

int ReferralCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    (argv.empty() ? err : out) << kReferralUsage;
    return argv.empty() ? 2 : 0;
  }
  const std::string sub = argv[0];
  auto args =
      Args::Parse(Argv(argv.begin() + 1, argv.end()), {"chain", "json"});
  if (!args.ok()) return UsageError(err, args.status(), kReferralUsage);
  std::set<std::string> known = kConnectionFlags;
  for (const char* f :
       {"subject", "to", "service", "purpose", "urgency", "contact", "need",
        "summary", "idempotency-key", "after", "state", "reason", "outcome",
        "chain", "json", "box", "count", "after-cursor", "heartbeat"}) {
    known.insert(f);
  }
  if (auto s = args->CheckKnown(known); !s.ok())
    return UsageError(err, s, kReferralUsage);
  const auto& pos = args->positional();
  if (sub == "status" || sub == "update") {
    if (pos.size() != 1) {
      return UsageError(err, absl::InvalidArgumentError("give one referral id"),
                        kReferralUsage);
    }
    if (sub == "status") return ShowStatus(*args, pos[0], out, err);
  }
  auto channel = AgentChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::AgentLocal::NewStub(*channel);
  if (sub == "send") return Send(*args, stub.get(), out, err);
  if (sub == "inbox")
    return List(*args, stub.get(), accord::v1::REFERRAL_BOX_INBOX, out, err);
  if (sub == "outbox")
    return List(*args, stub.get(), accord::v1::REFERRAL_BOX_OUTBOX, out, err);
  if (sub == "update") return Update(*args, stub.get(), pos[0], out, err);
  if (sub == "watch") return Watch(*args, stub.get(), out, err);
  err << "accordctl referral: unknown subcommand '" << Printable(sub) << "'\n"
      << kReferralUsage;
  return 2;
}

}  // namespace accord::cli
