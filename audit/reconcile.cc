#include "audit/reconcile.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/printable.h"
#include "runtime/clock.h"

namespace accord::audit {
namespace {

using accord::v1::AuditEntry;
using Kind = ReconcileFinding::Kind;

constexpr char kAnswered[] = "HOLDER_STATUS_ANSWERED";
constexpr char kNoAnswer[] = "none";

// request id, holder, requester.
using Key = std::tuple<std::string, std::string, std::string>;

struct Answer {
  uint64_t seq = 0;
  absl::Time time;
  std::string status;
  std::vector<std::string> fields;  // sorted
};

// Calls `fn` for every entry of a verified export, in order.
absl::Status ForEachEntry(
    LineSource& lines, const std::string& which,
    const std::function<absl::Status(const AuditEntry&)>& fn) {
  absl::string_view line;
  auto more = lines.Next(&line);
  if (!more.ok()) return more.status();
  if (!*more || !ParseExportHeaderLine(line).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": not an audit export (no header line)"));
  }
  JsonRow row;
  while (true) {
    more = lines.Next(&line);
    if (!more.ok()) return more.status();
    if (!*more || IsTreeHeadLine(line)) return absl::OkStatus();
    if (auto s = ParseJsonLineInto(line, &row); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(which, ": ", s.message()));
    }
    if (auto s = fn(row.entry); !s.ok()) return s;
  }
}

bool IsAgentAnswer(const AuditEntry& e) {
  return e.method() == "Disclose" || e.method() == "DiscloseInvolvement";
}

std::vector<std::string> Sorted(
    const google::protobuf::RepeatedPtrField<std::string>& fields) {
  std::vector<std::string> v(fields.begin(), fields.end());
  std::sort(v.begin(), v.end());
  return v;
}

// a - b, as multisets of sorted vectors.
std::vector<std::string> Minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(),
                      std::back_inserter(out));
  return out;
}

struct Span {
  // An export from entry 0 holds everything since the log began: it has no
  // start edge.
  bool partial = false;
  bool any = false;
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  void Add(absl::Time t) {
    any = true;
    first = std::min(first, t);
    last = std::max(last, t);
  }
  // Whether an answer recorded at `t` on the other side may have its twin
  // outside this export: the twin is recorded at the gateway after the
  // holder answers, within `edge` (deadlines, commits, clocks).
  bool NearEdge(absl::Time t, absl::Duration edge) const {
    return !any || t > last - edge || (partial && t < first + edge);
  }
};

}  // namespace

absl::StatusOr<ReconcileReport> ReconcileExports(
    LineSource& gateway, const ExportSummary& gateway_summary,
    LineSource& agent, const ExportSummary& agent_summary,
    const ReconcileOptions& options) {
  ReconcileReport report;
  report.gateway = gateway_summary;
  report.agent = agent_summary;

  // The agent's side: its answers by key, oldest first.
  std::map<Key, std::deque<Answer>> answers;
  std::set<std::string> orgs;
  Span agent_span;
  agent_span.partial = agent_summary.from_seq > 0;
  uint64_t unnamed = 0;
  auto s = ForEachEntry(agent, "agent export", [&](const AuditEntry& e) {
    agent_span.Add(FromProtoTime(e.time()));
    if (e.agent_org().empty()) {
      ++unnamed;
      return absl::OkStatus();
    }
    orgs.insert(e.agent_org());
    if (!IsAgentAnswer(e)) return absl::OkStatus();
    ++report.agent_answers;
    answers[{e.request_id(), e.holder(), e.caller_org()}].push_back(
        {e.seq(), FromProtoTime(e.time()), e.detail(),
         Sorted(e.fields_released())});
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (orgs.size() != 1 || unnamed > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent export: not one agent's log (",
        orgs.empty() ? "no entry names an agent"
                     : absl::StrCat("entries name ", orgs.size(),
                                    " agents: ", absl::StrJoin(orgs, ", ")),
        unnamed > 0 ? absl::StrCat("; ", unnamed, " entries name none") : "",
        ")"));
  }
  report.agent_org = *orgs.begin();

  // The gateway's side, streamed: each of this holder's answers finds its
  // twin or is reported.
  Span gateway_span;
  gateway_span.partial = gateway_summary.from_seq > 0;
  uint64_t foreign = 0;
  s = ForEachEntry(gateway, "gateway export", [&](const AuditEntry& e) {
    gateway_span.Add(FromProtoTime(e.time()));
    if (!e.agent_org().empty()) {
      ++foreign;
      return absl::OkStatus();
    }
    // Holders the gateway never asked (its own refusal) have no detail.
    if (e.method() != "Query" || e.holder() != report.agent_org ||
        e.detail().empty())
      return absl::OkStatus();
    ++report.gateway_answers;
    const bool answered_at_gateway =
        absl::StartsWith(e.detail(), "HOLDER_STATUS_");
    Answer g{e.seq(), FromProtoTime(e.time()),
             answered_at_gateway ? e.detail() : kNoAnswer,
             Sorted(e.fields_released())};
    ReconcileFinding f;
    f.request_id = e.request_id();
    f.holder = e.holder();
    f.requester = e.caller_org();
    f.at_gateway = true;
    f.gateway_seq = g.seq;
    f.gateway_time = g.time;
    f.gateway_status = g.status;
    f.gateway_fields = g.fields;
    auto it = answers.find({e.request_id(), e.holder(), e.caller_org()});
    if (it == answers.end() || it->second.empty()) {
      if (!answered_at_gateway) return absl::OkStatus();  // never reached it
      f.kind = Kind::kMissingAtAgent;
      f.agent_status = kNoAnswer;
      f.disclosure = g.status == kAnswered;
      f.near_edge = agent_span.NearEdge(g.time, options.edge);
      report.findings.push_back(std::move(f));
      return absl::OkStatus();
    }
    Answer a = std::move(it->second.front());
    it->second.pop_front();
    f.at_agent = true;
    f.agent_seq = a.seq;
    f.agent_time = a.time;
    f.agent_status = a.status;
    f.agent_fields = a.fields;
    f.disclosure = a.status == kAnswered || g.status == kAnswered;
    if (!answered_at_gateway) {
      if (a.status != kAnswered) {
        ++report.matched;  // nothing released on either side
        return absl::OkStatus();
      }
      f.kind = Kind::kGatewayHadNoAnswer;
    } else if (a.status != g.status) {
      f.kind = Kind::kStatusDiffers;
    } else if (a.fields != g.fields) {
      f.kind = Kind::kFieldsDiffer;
      f.only_at_gateway = Minus(g.fields, a.fields);
      f.only_at_agent = Minus(a.fields, g.fields);
    } else {
      ++report.matched;
      if (a.status == kAnswered) ++report.disclosures_matched;
      return absl::OkStatus();
    }
    report.findings.push_back(std::move(f));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (foreign > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gateway export: ", foreign,
        " entries were recorded by an agent (agent_org set): this is not the "
        "gateway's log"));
  }

  // What the agent answered that the gateway never recorded.
  for (auto& [key, rest] : answers) {
    for (Answer& a : rest) {
      ReconcileFinding f;
      f.kind = Kind::kMissingAtGateway;
      std::tie(f.request_id, f.holder, f.requester) = key;
      f.at_agent = true;
      f.agent_seq = a.seq;
      f.agent_time = a.time;
      f.agent_status = a.status;
      f.agent_fields = std::move(a.fields);
      f.gateway_status = kNoAnswer;
      f.disclosure = a.status == kAnswered;
      f.near_edge = gateway_span.NearEdge(a.time, options.edge);
      report.findings.push_back(std::move(f));
    }
  }
  std::sort(report.findings.begin(), report.findings.end(),
            [](const ReconcileFinding& x, const ReconcileFinding& y) {
              const absl::Time tx = x.at_agent ? x.agent_time : x.gateway_time;
              const absl::Time ty = y.at_agent ? y.agent_time : y.gateway_time;
              return tx < ty;
            });
  for (const auto& f : report.findings) report.discrepancies += !f.near_edge;
  return report;
}

absl::StatusOr<ReconcileReport> ReconcileExportFiles(
    const std::string& gateway_path, const TreeHeadVerifier& gateway_key,
    const std::string& agent_path, const TreeHeadVerifier& agent_key,
    const ReconcileOptions& options) {
  auto named = [](const std::string& path, const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  };
  auto g = VerifyJsonlExportFile(gateway_path, gateway_key);
  if (!g.ok()) return named(gateway_path, g.status());
  auto a = VerifyJsonlExportFile(agent_path, agent_key);
  if (!a.ok()) return named(agent_path, a.status());
  if (g->tree_head.key_id() == a->tree_head.key_id()) {
    return absl::InvalidArgumentError(absl::StrCat(
        agent_path, ": signed by the same key as ", gateway_path, " (key ",
        a->tree_head.key_id(), "): give the gateway's export and an agent's"));
  }
  auto gl = LinesFromFile(gateway_path);
  if (!gl.ok()) return named(gateway_path, gl.status());
  auto al = LinesFromFile(agent_path);
  if (!al.ok()) return named(agent_path, al.status());
  return ReconcileExports(**gl, *g, **al, *a, options);
}

std::string FormatReconcileReport(const ReconcileReport& r) {
  const auto p = [](const std::string& s) { return Printable(s); };
  const std::string agent = p(r.agent_org);
  std::string out = absl::StrCat(
      "gateway export: entries ", r.gateway.from_seq, " to ", r.gateway.to_seq,
      ", verified (key ", r.gateway.tree_head.key_id(), ")\n", agent,
      "'s agent export: entries ", r.agent.from_seq, " to ", r.agent.to_seq,
      ", verified (key ", r.agent.tree_head.key_id(), ")\n", "answers of ",
      agent, " to queries: ", r.gateway_answers, " in the gateway's log, ",
      r.agent_answers, " in the agent's; ", r.matched, " matched (",
      r.disclosures_matched, " disclosures)\n");
  uint64_t edge = r.findings.size() - r.discrepancies;
  absl::StrAppend(&out,
                  r.discrepancies == 0
                      ? "no discrepancies"
                      : absl::StrCat(r.discrepancies, " discrepancies"),
                  edge > 0 ? absl::StrCat(", ", edge,
                                          " answers near the edge of an "
                                          "export (not compared)")
                           : "",
                  "\n");
  for (const ReconcileFinding& f : r.findings) {
    const std::string who =
        absl::StrCat("request ", p(f.request_id), ", ", p(f.requester),
                     " asked ", p(f.holder));
    const std::string fields = f.agent_fields.empty()
                                   ? "nothing"
                                   : p(absl::StrJoin(f.agent_fields, ", "));
    const std::string at_agent =
        f.at_agent ? absl::StrCat("agent entry #", f.agent_seq, " at ",
                                  FormatTimestamp(ToProtoTime(f.agent_time)))
                   : "";
    const std::string at_gateway =
        f.at_gateway
            ? absl::StrCat("gateway entry #", f.gateway_seq, " at ",
                           FormatTimestamp(ToProtoTime(f.gateway_time)))
            : "";
    out.append("\n");
    if (f.near_edge) out.append("(near the edge of an export) ");
    switch (f.kind) {
      case Kind::kMissingAtGateway:
        absl::StrAppend(
            &out, "MISSING AT THE GATEWAY: ", who, " (", at_agent, "): ",
            f.disclosure
                ? absl::StrCat("the agent released ", fields, ",")
                : absl::StrCat("the agent answered ", p(f.agent_status), ","),
            " but the gateway's log has no entry for this answer. Nothing "
            "reached ",
            p(f.requester),
            ": the gateway releases an answer only after its own entry is "
            "durable. This is what a gateway that stopped between the "
            "holder's answer and its own entry leaves behind.\n");
        break;
      case Kind::kGatewayHadNoAnswer:
        absl::StrAppend(
            &out, "ANSWER NOT RECEIVED BY THE GATEWAY: ", who, " (", at_agent,
            "; ", at_gateway, "): the agent released ", fields,
            " but the gateway recorded no answer (timed out or unavailable), "
            "so nothing reached ",
            p(f.requester), ".\n");
        break;
      case Kind::kMissingAtAgent:
        absl::StrAppend(
            &out, "MISSING AT THE AGENT: ", who, " (", at_gateway,
            "): the gateway recorded ", p(f.gateway_status),
            f.disclosure
                ? absl::StrCat(" releasing ",
                               f.gateway_fields.empty()
                                   ? "nothing"
                                   : p(absl::StrJoin(f.gateway_fields, ", ")))
                : "",
            " from ", p(f.holder),
            ", but the agent's log holds no such answer: the holder's "
            "evidence is missing.\n");
        break;
      case Kind::kStatusDiffers:
        absl::StrAppend(&out, "ANSWER DIFFERS: ", who, " (", at_gateway, "; ",
                        at_agent, "): the gateway recorded ",
                        p(f.gateway_status), ", the agent ", p(f.agent_status),
                        ".\n");
        break;
      case Kind::kFieldsDiffer:
        absl::StrAppend(
            &out, "FIELDS DIFFER: ", who, " (", at_gateway, "; ", at_agent,
            "):",
            f.only_at_gateway.empty()
                ? ""
                : absl::StrCat(" only in the gateway's entry: ",
                               p(absl::StrJoin(f.only_at_gateway, ", ")), ";"),
            f.only_at_agent.empty()
                ? ""
                : absl::StrCat(" only in the agent's entry: ",
                               p(absl::StrJoin(f.only_at_agent, ", ")), ";"),
            " the gateway recorded ", p(absl::StrJoin(f.gateway_fields, ", ")),
            "; the agent released ", fields, ".\n");
        break;
    }
  }
  return out;
}

}  // namespace accord::audit
