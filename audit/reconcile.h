// Reconciliation of two-sided evidence: the gateway's audit export against
// one agent's export (both JSON Lines, audit/export_format.h). Every answer a
// holder gives to a query is recorded twice: by the agent when it answers
// (method "Disclose" or "DiscloseInvolvement", its HolderStatus in
// `detail`), and by the gateway before it releases anything (method "Query",
// `holder` the agent's organisation, the holder's status in `detail`). The
// two are twins when they share request id, holder and requester
// (`caller_org` on both sides). Reconcile names every answer on one side
// without its twin on the other, and every pair whose status or released
// fields (multisets of `fields_released`) differ.
//
// Both exports are verified offline first, each with its own key
// (ReconcileExportFiles does both); a report on unverified files proves
// nothing. Memory grows with the agent's holder answers, not with the
// gateway's log. Thread-safe (pure functions).
#ifndef ACCORD_AUDIT_RECONCILE_H_
#define ACCORD_AUDIT_RECONCILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/tree_head.h"
#include "audit/verify.h"

namespace accord::audit {

struct ReconcileFinding {
  enum class Kind {
    // The agent answered (and recorded it); the gateway's export has no
    // entry for that answer. Nothing reached the requester: the gateway
    // releases only after its own entry is durable. The signature of a
    // gateway that stopped between the holder's answer and its entry.
    kMissingAtGateway,
    // The agent answered, but the gateway recorded that it had no answer
    // (timed out, unavailable): the answer arrived too late and was not
    // released.
    kGatewayHadNoAnswer,
    // The gateway recorded an answer from this holder that the agent's log
    // does not hold: evidence is missing at the holder (a lost or replaced
    // agent log, or an answer the holder did not give).
    kMissingAtAgent,
    // Both recorded the answer, with different holder statuses.
    kStatusDiffers,
    // Both recorded a disclosure, with different fields or records.
    kFieldsDiffer,
  };
  Kind kind;
  std::string request_id, holder, requester;
  // Where each side recorded it (seq and time), when it did.
  bool at_gateway = false, at_agent = false;
  uint64_t gateway_seq = 0, agent_seq = 0;
  absl::Time gateway_time, agent_time;
  std::string gateway_status, agent_status;  // HOLDER_STATUS_... or "none"
  std::vector<std::string> gateway_fields, agent_fields;  // as recorded
  std::vector<std::string> only_at_gateway, only_at_agent;
  // An answer near the end (or start) of the other export: its twin may
  // simply fall outside that export's range. Reported, but not counted as a
  // discrepancy.
  bool near_edge = false;
  // Whether anything was disclosed on the side that has it (an ANSWERED
  // status), as opposed to a refusal or no match.
  bool disclosure = false;
};

struct ReconcileReport {
  std::string agent_org;
  ExportSummary gateway, agent;
  uint64_t gateway_answers =
      0;                       // the gateway's entries of this holder's answers
  uint64_t agent_answers = 0;  // the agent's Disclose entries
  uint64_t matched = 0;        // twins with the same status and fields
  uint64_t disclosures_matched = 0;
  std::vector<ReconcileFinding> findings;  // in time order
  // Findings that are not near an edge: what makes reconciliation fail.
  uint64_t discrepancies = 0;
};

struct ReconcileOptions {
  // An answer recorded within this long of the end (or start) of the other
  // export may have its twin just outside it: holder deadlines, commit
  // delays and clock differences between the hosts.
  absl::Duration edge = absl::Seconds(30);
};

// Verifies the gateway's export with `gateway_key` and the agent's with
// `agent_key`, then reconciles them. Errors name the file at fault: a failed
// verification, an agent export that is not one agent's (no or several
// agent_org values), or a gateway export holding agent entries.
absl::StatusOr<ReconcileReport> ReconcileExportFiles(
    const std::string& gateway_path, const TreeHeadVerifier& gateway_key,
    const std::string& agent_path, const TreeHeadVerifier& agent_key,
    const ReconcileOptions& options = {});

// Reconciles two exports already verified (their summaries as
// VerifyJsonlExport gave them).
absl::StatusOr<ReconcileReport> ReconcileExports(
    LineSource& gateway, const ExportSummary& gateway_summary,
    LineSource& agent, const ExportSummary& agent_summary,
    const ReconcileOptions& options = {});

// The report for a person: one paragraph per finding, naming request,
// holder, requester, both sides' entries and what it means.
std::string FormatReconcileReport(const ReconcileReport& report);

}  // namespace accord::audit

#endif  // ACCORD_AUDIT_RECONCILE_H_
