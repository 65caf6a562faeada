// The information-sharing agreement (ISA) engine, used by the gateway to
// decide and by every agent to re-check the gateway's decision.
//
// The story:
//  1. A partnership file (who the partners are, which purposes exist) and the
//     agreement files (each one accord.v1.Agreement in text format) are
//     loaded, validated once (every error names file:line:col and the rule or
//     field at fault) and compiled into an immutable, indexed PolicySet.
//  2. Decide() answers one request: which agreement and rule allow the
//     requester to do this action towards this holder for this purpose, at
//     this moment, and what may be released (the field plan), or why not.
//     Anything no rule permits is denied, field by field.
//  3. Engine owns the current PolicySet and swaps it atomically on reload,
//     keeping the old one when any file is bad.
//
// Thread-safety: PolicySet is immutable and thread-safe. Decision is a value;
// it points into the PolicySet that made it (Engine::Decide keeps that alive).
// Engine is thread-safe: Decide never blocks on Reload.
#ifndef ACCORD_POLICY_POLICY_H_
#define ACCORD_POLICY_POLICY_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.pb.h"
#include "accord/v1/policy.pb.h"
#include "policy/fields.h"
#include "runtime/clock.h"

namespace accord::policy {

// ---------------------------------------------------------------------------
// Items: what a rule can release. Subject fields (catalogue order) come first,
// then record categories, so a set of items is one 32-bit word.
constexpr int kFieldItems = 14;
constexpr int kItemCount = kFieldItems + 10;

// The item of a catalogue field / of a record category; -1 when invalid.
int ItemOfField(absl::string_view field);
int ItemOfCategory(accord::v1::DataCategory category);
// "date_of_birth" or "CASE_SUMMARY" (for messages).
std::string ItemName(int item);

class ItemSet {
 public:
  constexpr ItemSet() = default;
  constexpr explicit ItemSet(uint32_t bits) : bits_(bits) {}
  void Add(int item) { bits_ |= uint32_t{1} << item; }
  bool Has(int item) const { return (bits_ >> item) & 1u; }
  bool empty() const { return bits_ == 0; }
  int size() const { return __builtin_popcount(bits_); }
  uint32_t bits() const { return bits_; }
  ItemSet operator&(ItemSet o) const { return ItemSet(bits_ & o.bits_); }
  bool operator==(ItemSet o) const { return bits_ == o.bits_; }
  bool operator!=(ItemSet o) const { return bits_ != o.bits_; }

 private:
  uint32_t bits_ = 0;
};

// ---------------------------------------------------------------------------
// Requests

// What a requester asserts when disclosing without consent. Views point into
// the caller's data.
struct NoConsentAssertion {
  enum class Told { kNotRecorded, kTold, kNotTold };

  accord::v1::NoConsentBasis basis = accord::v1::NO_CONSENT_BASIS_UNSPECIFIED;
  accord::v1::ConsentNotSoughtReason reason =
      accord::v1::CONSENT_NOT_SOUGHT_REASON_UNSPECIFIED;
  bool has_justification = false;
  // An approver is present when it names a user; `approver_role` is its role.
  bool has_approver = false;
  absl::string_view approver_role;
  // kNotTold only with a reason; `subject_told: false` alone is kNotRecorded.
  Told told = Told::kNotRecorded;

  static NoConsentAssertion FromProto(const accord::v1::NoConsentAssertion& a);
};

// One decision request, the hot-path form: views only, no allocation. The
// views (and `no_consent`) must outlive the call.
struct Request {
  absl::string_view requester_org;
  absl::string_view holder_org;
  accord::v1::Action action = accord::v1::ACTION_UNSPECIFIED;
  absl::string_view purpose;
  // The fields and categories asked for; nothing asked means everything the
  // matching rule releases. Names outside the catalogue are never released.
  ItemSet asked;
  int unknown_fields_asked = 0;
  bool involvement_only = false;
  const NoConsentAssertion* no_consent = nullptr;
  // The moment of decision; InfinitePast means "now" for Engine::Decide.
  absl::Time at = absl::InfinitePast();

  void AskField(absl::string_view field);
  void AskCategory(accord::v1::DataCategory category);
  bool asked_anything() const {
    return !asked.empty() || unknown_fields_asked > 0;
  }

  // Views into `proto` (and `*assertion_storage`, filled when the proto
  // carries a no-consent assertion). An unset `at` becomes `default_at`.
  static Request FromProto(const accord::v1::DecisionRequest& proto,
                           absl::Time default_at,
                           NoConsentAssertion* assertion_storage);
};

// ---------------------------------------------------------------------------
// Decisions

struct CompiledRule;  // policy/compiled.h
struct PolicyData;
class PolicySet;

// Why a no-consent assertion failed, in more detail than DenyReason.
enum class ClauseFailure {
  kNone,
  kNoClause,
  kBasisMismatch,
  kReasonNotAccepted,
  kJustificationMissing,
  kApproverMissing,
  kApproverWrongRole,
  kToldNotRecorded,
};

class Decision {
 public:
  bool allowed() const { return verdict == accord::v1::VERDICT_ALLOW; }

  // Empty / 0 when no rule was involved (e.g. no agreement between parties).
  absl::string_view agreement_id() const;
  uint32_t agreement_version() const;
  absl::string_view rule_id() const;
  // The matching rule's lawful basis when allowed, else unspecified.
  accord::v1::LawfulBasis lawful_basis() const;
  // The transform of a planned item (TRANSFORM_UNSPECIFIED when not planned).
  accord::v1::Transform TransformOf(int item) const;

  // Human-readable reasoning; never contains record values.
  std::string Explanation() const;
  accord::v1::Decision ToProto() const;

  accord::v1::Verdict verdict = accord::v1::VERDICT_DENY;
  accord::v1::DenyReason deny_reason = accord::v1::DENY_REASON_UNSPECIFIED;
  // The rule that matched; for a denial the rule that came nearest, if any.
  const CompiledRule* rule = nullptr;
  ItemSet plan;  // what is released (each with rule->transforms[item])
  accord::v1::ConsentRequirement consent =
      accord::v1::CONSENT_REQUIREMENT_UNSPECIFIED;
  bool flag_for_review = false;
  bool involvement_only = false;
  // How many rules would have allowed the request (the choice is explained
  // when more than one did).
  int allowing_rules = 0;

  // Context for the explanation.
  const PolicyData* data = nullptr;
  int requester = -1, holder = -1,
      purpose = -1;  // interned indices, -1 unknown
  accord::v1::Action action = accord::v1::ACTION_UNSPECIFIED;
  absl::Time at;
  ItemSet asked;
  bool asked_anything = false;
  bool assertion_present = false;
  ClauseFailure clause_failure = ClauseFailure::kNone;
  accord::v1::NoConsentBasis asserted_basis =
      accord::v1::NO_CONSENT_BASIS_UNSPECIFIED;
  accord::v1::ConsentNotSoughtReason asserted_reason =
      accord::v1::CONSENT_NOT_SOUGHT_REASON_UNSPECIFIED;
  // Set by Engine::Decide so the rule pointers stay valid after a reload.
  std::shared_ptr<const PolicySet> policy;
};

// What an agent compares with the gateway's decision: verdict, agreement id
// and version, rule id, field plan (as a set) and consent requirement.
bool SameDecision(const accord::v1::Decision& a, const accord::v1::Decision& b);

// ---------------------------------------------------------------------------
// PolicySet: the compiled, immutable policy.

class PolicySet {
 public:
  // A file's name (used in messages) and contents.
  struct Source {
    std::string name;
    std::string text;
  };

  // Validates and compiles. Errors (InvalidArgument) list every problem found,
  // one per line, each "file:line:col: ...".
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const PolicySet>> Compile(
      const Source& partnership, const std::vector<Source>& agreements);
  // Reads the files, then Compile.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const PolicySet>> Load(
      const std::string& partnership_file,
      const std::vector<std::string>& agreement_files);

  ~PolicySet();
  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;

  // Deny by default. Looks up only the rules indexed under (requester,
  // action, holder); no heap allocation.
  Decision Decide(const Request& request) const;
  // Convenience: an unset `at` means `default_at`.
  accord::v1::Decision DecideProto(const accord::v1::DecisionRequest& request,
                                   absl::Time default_at) const;

  // The full reasoning for one request: every agreement between the parties,
  // every rule in them, and why each did or did not match.
  std::string Explain(const Request& request) const;

  // Holders towards which some rule in force at `at` lets `requester` do
  // `action` for `purpose` (sorted). The requester itself is excluded, but
  // for STATISTICS: a partner's own figures are part of the partnership's.
  std::vector<std::string> CandidateHolders(absl::string_view requester,
                                            accord::v1::Action action,
                                            absl::string_view purpose,
                                            absl::Time at) const;

  // The register of agreements (in force at `now`, or all).
  std::vector<accord::v1::AgreementSummary> Register(
      absl::Time now, bool include_inactive) const;

  // Problems that do not stop loading: agreements past review_by or not in
  // force at `now`, rules that can never match, overlapping rules whose field
  // plans conflict. Each names file:line.
  std::vector<std::string> Warnings(absl::Time now) const;

  const accord::v1::Partnership& partnership() const;
  int agreement_count() const;
  int rule_count() const;
  const PolicyData& data() const { return *data_; }

 private:
  explicit PolicySet(std::unique_ptr<PolicyData> data);
  std::unique_ptr<PolicyData> data_;
};

// ---------------------------------------------------------------------------
// Engine: the current policy of a running gateway or agent.

class Engine {
 public:
  // Loads and validates every file; fails naming the file and line at fault.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Engine>> Create(
      std::string partnership_file, std::vector<std::string> agreement_files,
      const Clock* clock);

  // Decides with the current policy (a request with an unset `at`, i.e.
  // absl::InfinitePast(), is decided at the clock's now).
  Decision Decide(const Request& request) const;
  accord::v1::Decision DecideProto(
      const accord::v1::DecisionRequest& request) const;
  std::string Explain(const Request& request) const;
  std::vector<std::string> CandidateHolders(absl::string_view requester,
                                            accord::v1::Action action,
                                            absl::string_view purpose,
                                            absl::Time at) const;
  // The register of agreements at the clock's now.
  std::vector<accord::v1::AgreementSummary> Register(
      bool include_inactive) const;

  // Re-reads every file; swaps in the new policy only if all of it validates,
  // otherwise keeps the old one and returns the error.
  [[nodiscard]] absl::Status Reload();
  // Reload() only when a file's size or modification time changed. Returns
  // whether a new policy was swapped in.
  [[nodiscard]] absl::StatusOr<bool> ReloadIfChanged();

  // The policy in force now (a snapshot; never null).
  std::shared_ptr<const PolicySet> current() const;

 private:
  struct FileStamp {
    std::string path;
    int64_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const FileStamp& o) const {
      return path == o.path && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  Engine(std::string partnership_file, std::vector<std::string> agreement_files,
         const Clock* clock);
  std::vector<FileStamp> Stamps() const;
  absl::Status ReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const std::string partnership_file_;
  const std::vector<std::string> agreement_files_;
  const Clock* const clock_;
  absl::Mutex reload_mu_;
  std::vector<FileStamp> stamps_ ABSL_GUARDED_BY(reload_mu_);
  // Read with std::atomic_load, written with std::atomic_store.
  std::shared_ptr<const PolicySet> current_;
};

}  // namespace accord::policy

#endif  // ACCORD_POLICY_POLICY_H_
