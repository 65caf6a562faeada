// accordctl audit: the auditor's tools.

#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "audit/reconcile.h"
#include "audit/tree_head.h"
#include "audit/verify.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/status.h"

namespace accord::cli {

absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensFromArgs(
    const Args& args);

namespace {

constexpr char kAuditUsage[] =
    R"(usage: accordctl audit SUBCOMMAND [flags] (as an auditor: --as auditor-NAME)

The gateway's log by default. An agent's own log with --agent HOST:PORT (its
local API port), as that organisation (--as org-ORG, e.g. its data protection
officer with --user) or as an auditor (--as auditor-NAME --agent-org ORG).

  search [--org ORG] [--user-id ID] [--token KIND:HEX] [--purpose P] [--agreement ID]
         [--decision allow|deny|partial] [--from RFC3339] [--until RFC3339] [--page-size N] [--all]
                              (--user-id filters by the acting user recorded in
                              entries; --user is your own user id)
  subject-access (--token KIND:HEX ... | identifiers with --linkage-key)
                              every disclosure about one person, readable
  review-queue [--page-size N] [--all]
                              no-consent disclosures not yet reviewed
  mark-reviewed SEQ --note TEXT
                              records the review as an audit entry
  tree-head                   the latest signed tree head
  proof SEQ [--size N] --public-key PEM [--out BUNDLE]
                              fetch an inclusion proof and check it offline;
                              --out keeps it as a proof bundle file
  consistency FIRST SECOND --public-key PEM [--out BUNDLE]
                              fetch a consistency proof between two tree sizes and check it
  export --out FILE [--format jsonl|csv] [--from SEQ] [--to SEQ]
                              shows progress on a terminal
  verify FILE --public-key PEM
                              check a JSON Lines export or a proof bundle offline;
                              names the first bad entry
  reconcile --gateway EXPORT --gateway-key PEM --agent EXPORT --agent-key PEM
            [--edge SECONDS]
                              verify the gateway's export and one agent's, then
                              name every answer of that agent recorded on one side
                              without its twin on the other, and every twin whose
                              status or fields differ; exit status 1 when any
Add --json for raw output.
)";

using Stub = accord::v1::Auditor::Stub;

absl::StatusOr<uint64_t> ParseU64(const std::string& s,
                                  const std::string& what) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a number, got '", s, "'"));
  }
  return v;
}

absl::StatusOr<google::protobuf::Timestamp> ParseTime(const std::string& s) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("time '", s, "' is not RFC 3339: ", err));
  }
  return ToProtoTime(t);
}

int Search(const Args& args, Stub* stub, std::ostream& out, std::ostream& err) {
  accord::v1::AuditSearchRequest req;
  req.set_caller_org(args.Get("org"));
  req.set_user_id(args.Get("user-id"));
  req.set_purpose(args.Get("purpose"));
  req.set_agreement_id(args.Get("agreement"));
  if (args.Has("token")) {
    auto tokens = TokensFromArgs(args);
    if (!tokens.ok()) return UsageError(err, tokens.status(), kAuditUsage);
    *req.mutable_subject() = (*tokens)[0];
  }
  const std::string decision = args.Get("decision");
  if (decision == "allow") req.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
  if (decision == "deny") req.set_decision(accord::v1::AUDIT_DECISION_DENY);
  if (decision == "partial")
    req.set_decision(accord::v1::AUDIT_DECISION_PARTIAL);
  if (!decision.empty() &&
      req.decision() == accord::v1::AUDIT_DECISION_UNSPECIFIED) {
    return UsageError(
        err,
        absl::InvalidArgumentError("--decision must be allow, deny or partial"),
        kAuditUsage);
  }
  for (const char* flag : {"from", "until"}) {
    if (!args.Has(flag)) continue;
    auto t = ParseTime(args.Get(flag));
    if (!t.ok()) return UsageError(err, t.status(), kAuditUsage);
    *(std::string(flag) == "from" ? req.mutable_time()->mutable_from()
                                  : req.mutable_time()->mutable_until()) = *t;
  }
  uint32_t page_size = 50;
  if (args.Has("page-size") &&
      !absl::SimpleAtoi(args.Get("page-size"), &page_size)) {
    return UsageError(
        err, absl::InvalidArgumentError("--page-size must be a number"),
        kAuditUsage);
  }
  req.set_page_size(page_size);
  do {
    grpc::ClientContext ctx;
    PrepareContext(args, &ctx);
    accord::v1::AuditSearchResponse resp;
    auto status = stub->Search(&ctx, req, &resp);
    if (!status.ok()) return Failure(err, FromGrpcStatus(status));
    for (const auto& e : resp.entries()) {
      if (args.Has("json")) {
        PrintJson(out, e);
      } else {
        PrintAuditEntry(out, e);
      }
    }
    req.set_page_token(resp.next_page_token());
  } while (args.Has("all") && !req.page_token().empty());
  if (!req.page_token().empty() && !args.Has("json")) {
    out << "(more entries: add --all)\n";
  }
  return 0;
}

// Checks a signed tree head with the gateway's public key given by
// --public-key.
absl::Status CheckHead(const Args& args,
                       const accord::v1::SignedTreeHead& head) {
  auto key_file = args.Require("public-key");
  if (!key_file.ok()) return key_file.status();
  auto verifier = audit::TreeHeadVerifier::FromPublicKeyFile(*key_file);
  if (!verifier.ok()) return verifier.status();
  return (*verifier)->Verify(head);
}

std::vector<audit::Hash> PathOf(
    const google::protobuf::RepeatedPtrField<std::string>& path,
    absl::Status* status) {
  std::vector<audit::Hash> out;
  for (const auto& p : path) {
    auto h = audit::HashFromBytes(p);
    if (!h.ok()) {
      *status = h.status();
      return {};
    }
    out.push_back(*h);
  }
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc | std::ios::binary);
  f << text;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// A proof bundle is one JSON object starting with its proof; an export
// starts with its header line.
absl::StatusOr<bool> IsProofBundle(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char head[32] = {};
  f.read(head, sizeof(head) - 1);
  const absl::string_view start(head, static_cast<size_t>(f.gcount()));
  return absl::StartsWith(start, "{\"inclusion_proof\"") ||
         absl::StartsWith(start, "{\"consistency_proof\"");
}

int VerifyFile(const Args& args, const std::string& path, std::ostream& out,
               std::ostream& err) {
  auto key = args.Require("public-key");
  if (!key.ok()) return UsageError(err, key.status(), kAuditUsage);
  auto verifier = audit::TreeHeadVerifier::FromPublicKeyFile(*key);
  if (!verifier.ok()) return Failure(err, verifier.status());
  auto bundle = IsProofBundle(path);
  if (!bundle.ok()) return Failure(err, bundle.status());
  if (*bundle) {
    std::ifstream f(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)),
                     std::istreambuf_iterator<char>());
    if (text.size() > (1 << 20)) {
      return Failure(err, absl::InvalidArgumentError(absl::StrCat(
                              path, ": a proof bundle is at most 1 MiB")));
    }
    if (auto s = audit::VerifyProofBundle(text, **verifier); !s.ok()) {
      return Failure(
          err, absl::Status(s.code(), absl::StrCat(path, ": ", s.message())));
    }
    out << "verified the proof bundle " << path << " (key "
        << (*verifier)->key_id() << ")\n";
    return 0;
  }
  auto report = audit::VerifyJsonlExportFile(path, **verifier);
  if (!report.ok()) return Failure(err, report.status());
  out << "verified entries " << report->from_seq << " to " << report->to_seq
      << " against the signed tree head of size "
      << report->tree_head.tree_size() << " (key " << report->tree_head.key_id()
      << ")\n";
  return 0;
}

int ReviewQueue(const Args& args, Stub* stub, std::ostream& out,
                std::ostream& err) {
  accord::v1::ReviewQueueRequest req;
  uint32_t page_size = 100;
  if (args.Has("page-size") &&
      !absl::SimpleAtoi(args.Get("page-size"), &page_size)) {
    return UsageError(
        err, absl::InvalidArgumentError("--page-size must be a number"),
        kAuditUsage);
  }
  req.set_page_size(page_size);
  int shown = 0;
  do {
    grpc::ClientContext ctx;
    PrepareContext(args, &ctx);
    accord::v1::ReviewQueueResponse resp;
    auto status = stub->ReviewQueue(&ctx, req, &resp);
    if (!status.ok()) return Failure(err, FromGrpcStatus(status));
    for (const auto& e : resp.entries()) {
      if (args.Has("json")) {
        PrintJson(out, e);
      } else {
        PrintAuditEntry(out, e);
      }
      ++shown;
    }
    req.set_page_token(resp.next_page_token());
  } while (args.Has("all") && !req.page_token().empty());
  if (args.Has("json")) return 0;
  if (shown == 0) out << "the review queue is empty\n";
  if (!req.page_token().empty()) out << "(more entries: add --all)\n";
  return 0;
}

int Proof(const Args& args, Stub* stub, uint64_t seq, std::ostream& out,
          std::ostream& err) {
  accord::v1::InclusionProofRequest req;
  req.set_leaf_index(seq);
  if (args.Has("size")) {
    auto size = ParseU64(args.Get("size"), "--size");
    if (!size.ok()) return UsageError(err, size.status(), kAuditUsage);
    req.set_tree_size(*size);
  }
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  accord::v1::InclusionProofResponse resp;
  auto status = stub->GetInclusionProof(&ctx, req, &resp);
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  if (auto s = CheckHead(args, resp.tree_head()); !s.ok())
    return Failure(err, s);
  absl::Status path_status;
  auto path = PathOf(resp.proof().path(), &path_status);
  if (!path_status.ok()) return Failure(err, path_status);
  auto root = audit::RootOf(resp.tree_head());
  if (!root.ok()) return Failure(err, root.status());
  const audit::Hash leaf = audit::LeafHash(audit::EncodeLeaf(resp.entry()));
  if (auto s = audit::VerifyInclusion(leaf, seq, resp.proof().tree_size(), path,
                                      *root);
      !s.ok()) {
    return Failure(err, s);
  }
  if (args.Has("out")) {
    if (auto s = WriteFile(args.Get("out"),
                           audit::InclusionProofBundle(
                               resp.proof(), audit::EncodeLeaf(resp.entry()),
                               resp.tree_head()));
        !s.ok()) {
      return Failure(err, s);
    }
  }
  PrintAuditEntry(out, resp.entry());
  out << "entry " << seq << " is included in the log of "
      << resp.tree_head().tree_size() << " entries signed at "
      << FormatTime(resp.tree_head().timestamp()) << " (root "
      << HexEncode(resp.tree_head().root_hash()) << "); proof of "
      << path.size() << " hashes verified\n";
  return 0;
}

int Consistency(const Args& args, Stub* stub, uint64_t first, uint64_t second,
                std::ostream& out, std::ostream& err) {
  accord::v1::SignedTreeHead heads[2];
  for (int i = 0; i < 2; ++i) {
    accord::v1::InclusionProofRequest req;
    req.set_leaf_index(0);
    req.set_tree_size(i == 0 ? first : second);
    grpc::ClientContext ctx;
    PrepareContext(args, &ctx);
    accord::v1::InclusionProofResponse resp;
    auto status = stub->GetInclusionProof(&ctx, req, &resp);
    if (!status.ok()) return Failure(err, FromGrpcStatus(status));
    if (auto s = CheckHead(args, resp.tree_head()); !s.ok())
      return Failure(err, s);
    heads[i] = resp.tree_head();
  }
  accord::v1::ConsistencyProofRequest req;
  req.set_first_size(first);
  req.set_second_size(second);
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  accord::v1::ConsistencyProof proof;
  auto status = stub->GetConsistencyProof(&ctx, req, &proof);
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  absl::Status path_status;
  auto path = PathOf(proof.path(), &path_status);
  if (!path_status.ok()) return Failure(err, path_status);
  auto r1 = audit::RootOf(heads[0]);
  auto r2 = audit::RootOf(heads[1]);
  if (!r1.ok() || !r2.ok())
    return Failure(err, absl::DataLossError("bad root hash"));
  if (auto s = audit::VerifyConsistency(first, second, *r1, *r2, path);
      !s.ok()) {
    return Failure(err, s);
  }
  if (args.Has("out")) {
    if (auto s = WriteFile(args.Get("out"), audit::ConsistencyProofBundle(
                                                proof, heads[0], heads[1]));
        !s.ok()) {
      return Failure(err, s);
    }
  }
  out << "the log of " << second << " entries extends the log of " << first
      << " entries without rewriting it; proof of " << path.size()
      << " hashes verified\n";
  return 0;
}

int Export(const Args& args, Stub* stub, std::ostream& out, std::ostream& err) {
  auto file = args.Require("out");
  if (!file.ok()) return UsageError(err, file.status(), kAuditUsage);
  accord::v1::ExportRequest req;
  const std::string format = args.Get("format", "jsonl");
  if (format == "jsonl") {
    req.set_format(accord::v1::EXPORT_FORMAT_JSONL);
  } else if (format == "csv") {
    req.set_format(accord::v1::EXPORT_FORMAT_CSV);
  } else {
    return UsageError(
        err, absl::InvalidArgumentError("--format must be jsonl or csv"),
        kAuditUsage);
  }
  for (const char* flag : {"from", "to"}) {
    if (!args.Has(flag)) continue;
    auto v = ParseU64(args.Get(flag), std::string("--") + flag);
    if (!v.ok()) return UsageError(err, v.status(), kAuditUsage);
    std::string(flag) == "from" ? req.set_from_seq(*v) : req.set_to_seq(*v);
  }
  const std::string tmp = *file + ".partial";
  std::ofstream f(tmp, std::ios::trunc | std::ios::binary);
  if (!f)
    return Failure(err,
                   absl::InternalError(absl::StrCat("cannot write ", tmp)));
  grpc::ClientContext ctx;
  PrepareContext(args, &ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(6));
  auto reader = stub->Export(&ctx, req);
  accord::v1::ExportChunk chunk;
  const bool tty = isatty(fileno(stderr));
  while (reader->Read(&chunk)) {
    f.write(chunk.data().data(),
            static_cast<std::streamsize>(chunk.data().size()));
    if (tty && chunk.entries_total() > 0) {
      err << "\rexporting: " << chunk.entries_so_far() << " / "
          << chunk.entries_total() << " entries ("
          << (100 * chunk.entries_so_far() / chunk.entries_total()) << "%)"
          << std::flush;
    }
  }
  if (tty) err << "\n";
  auto status = reader->Finish();
  f.close();
  if (!status.ok()) {
    std::remove(tmp.c_str());
    return Failure(err, FromGrpcStatus(status));
  }
  std::rename(tmp.c_str(), file->c_str());
  out << "exported " << chunk.entries_so_far() << " entries to " << *file
      << (req.format() == accord::v1::EXPORT_FORMAT_JSONL
              ? " (with the signed tree head it verifies against)\n"
              : "\n");
  return 0;
}

int Reconcile(const Args& args, std::ostream& out, std::ostream& err) {
  std::string files[4];
  const char* flags[4] = {"gateway", "gateway-key", "agent", "agent-key"};
  for (int i = 0; i < 4; ++i) {
    auto v = args.Require(flags[i]);
    if (!v.ok()) return UsageError(err, v.status(), kAuditUsage);
    files[i] = *v;
  }
  audit::ReconcileOptions options;
  if (args.Has("edge")) {
    auto seconds = ParseU64(args.Get("edge"), "--edge");
    if (!seconds.ok()) return UsageError(err, seconds.status(), kAuditUsage);
    options.edge = absl::Seconds(*seconds);
  }
  auto gateway_key = audit::TreeHeadVerifier::FromPublicKeyFile(files[1]);
  if (!gateway_key.ok()) return Failure(err, gateway_key.status());
  auto agent_key = audit::TreeHeadVerifier::FromPublicKeyFile(files[3]);
  if (!agent_key.ok()) return Failure(err, agent_key.status());
  auto report = audit::ReconcileExportFiles(files[0], **gateway_key, files[2],
                                            **agent_key, options);
  if (!report.ok()) return Failure(err, report.status());
  out << audit::FormatReconcileReport(*report);
  return report->discrepancies == 0 ? 0 : 1;
}

// The log the online subcommands read: the gateway's, or with --agent an
// agent's (its Auditor service on the local API port).
absl::StatusOr<std::shared_ptr<grpc::Channel>> LogChannel(const Args& args) {
  if (!args.Has("agent")) return GatewayChannel(args);
  return AgentChannel(args, args.Get("agent-org"));
}

}  // namespace

int AuditCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"help", "json", "all"});
  if (!args.ok()) return UsageError(err, args.status(), kAuditUsage);
  if (args->Has("help") || args->positional().empty()) {
    out << kAuditUsage;
    return args->Has("help") ? 0 : 2;
  }
  std::set<std::string> known = kConnectionFlags;
  known.insert({"help",        "json",        "all",         "org",
                "user-id",     "purpose",     "agreement",   "decision",
                "from",        "until",       "page-size",   "token",
                "linkage-key", "given-name",  "family-name", "dob",
                "postcode",    "nhs",         "note",        "size",
                "public-key",  "out",         "format",      "to",
                "agent-org",   "gateway-key", "agent-key",   "edge"});
  if (auto s = args->CheckKnown(known); !s.ok())
    return UsageError(err, s, kAuditUsage);
  const auto& pos = args->positional();
  const std::string& sub = pos[0];

  if (sub == "verify") {
    if (pos.size() != 2) {
      return UsageError(err, absl::InvalidArgumentError("verify needs a FILE"),
                        kAuditUsage);
    }
    return VerifyFile(*args, pos[1], out, err);
  }

  if (sub == "reconcile") return Reconcile(*args, out, err);

  auto channel = LogChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::Auditor::NewStub(*channel);
  if (sub == "search") return Search(*args, stub.get(), out, err);
  if (sub == "subject-access") {
    auto tokens = TokensFromArgs(*args);
    if (!tokens.ok()) return UsageError(err, tokens.status(), kAuditUsage);
    accord::v1::SubjectAccessRequest req;
    for (auto& t : *tokens) *req.add_subjects() = std::move(t);
    // The report comes a page at a time; each page is printed as it comes.
    req.set_page_size(1000);
    do {
      grpc::ClientContext ctx;
      PrepareContext(*args, &ctx);
      accord::v1::SubjectAccessResponse resp;
      auto status = stub->SubjectAccessReport(&ctx, req, &resp);
      if (!status.ok()) return Failure(err, FromGrpcStatus(status));
      if (args->Has("json")) {
        PrintJson(out, resp);
      } else {
        out << PrintableBlock(resp.report(), "");
      }
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return 0;
  }
  if (sub == "review-queue") return ReviewQueue(*args, stub.get(), out, err);
  if (sub == "mark-reviewed") {
    if (pos.size() != 2) {
      return UsageError(err,
                        absl::InvalidArgumentError("mark-reviewed needs SEQ"),
                        kAuditUsage);
    }
    auto seq = ParseU64(pos[1], "SEQ");
    if (!seq.ok()) return UsageError(err, seq.status(), kAuditUsage);
    accord::v1::MarkReviewedRequest req;
    req.set_seq(*seq);
    if (args->Get("note").empty()) {
      return UsageError(
          err,
          absl::InvalidArgumentError(
              "mark-reviewed needs --note TEXT: what the review found"),
          kAuditUsage);
    }
    req.set_note(args->Get("note"));
    grpc::ClientContext ctx;
    PrepareContext(*args, &ctx);
    accord::v1::MarkReviewedResponse resp;
    auto status = stub->MarkReviewed(&ctx, req, &resp);
    if (!status.ok()) return Failure(err, FromGrpcStatus(status));
    out << "entry " << *seq << " marked reviewed (audit entry "
        << resp.audit_seq() << ")\n";
    return 0;
  }
  if (sub == "tree-head") {
    grpc::ClientContext ctx;
    PrepareContext(*args, &ctx);
    accord::v1::SignedTreeHead head;
    auto status =
        stub->GetTreeHead(&ctx, accord::v1::GetTreeHeadRequest(), &head);
    if (!status.ok()) return Failure(err, FromGrpcStatus(status));
    if (args->Has("json")) {
      PrintJson(out, head);
    } else {
      out << "tree size " << head.tree_size() << ", root "
          << HexEncode(head.root_hash()) << ", signed "
          << FormatTime(head.timestamp()) << " by key " << head.key_id()
          << "\n";
    }
    return 0;
  }
  if (sub == "proof" && pos.size() == 2) {
    auto seq = ParseU64(pos[1], "SEQ");
    if (!seq.ok()) return UsageError(err, seq.status(), kAuditUsage);
    return Proof(*args, stub.get(), *seq, out, err);
  }
  if (sub == "consistency" && pos.size() == 3) {
    auto a = ParseU64(pos[1], "FIRST");
    auto b = ParseU64(pos[2], "SECOND");
    if (!a.ok() || !b.ok()) {
      return UsageError(
          err, absl::InvalidArgumentError("FIRST and SECOND must be numbers"),
          kAuditUsage);
    }
    return Consistency(*args, stub.get(), *a, *b, out, err);
  }
  if (sub == "export") return Export(*args, stub.get(), out, err);
  return UsageError(
      err, absl::InvalidArgumentError("unknown or incomplete audit subcommand"),
      kAuditUsage);
}

}  // namespace accord::cli
