// The agent's store: the partner's subjects, their tokens, records, consent
// records and engagements, in SQLite (WAL).
//
// Tokens are derived by the caller (the agent's linkage key never reaches the
// store's callers over the wire). Consent history is append-only: a consent
// record is written once and never changed; withdrawal is a separate event
// (who, when), and `withdrawn_at` is filled in from it when consents are read.
// The schema enforces this with triggers that refuse any UPDATE or DELETE of
// consents and consent events. Every write is one transaction, so a failed
// write leaves nothing half-written; Writer::Savepoint gives one part of a
// transaction (one import row) the same all-or-nothing property.
//
// Thread-safe: writes are serialised on one connection, reads use a pool of
// read-only connections so disclosures never wait for writes. Statements are
// prepared once per connection and reused. Each store has one background
// thread, which copies the write-ahead log back into the database once it
// holds 32 MiB (a checkpoint), so that commits never wait for that.
#ifndef ACCORD_AGENT_STORE_H_
#define ACCORD_AGENT_STORE_H_

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/records.pb.h"
#include "runtime/sqlite.h"

namespace accord::agent {

// A stored row that a read left out because it does not parse (e.g. text
// that is not valid UTF-8, written before the agent checked its input): the
// rest of the person's data is still read. Named by table and row id, never
// by content; the store also logs it to stderr.
struct SkippedRow {
  std::string table;  // "subjects", "records", "consents" or "engagements"
  int64_t row_id = 0;
  // A record's category (kept in a column of its own); UNSPECIFIED otherwise.
  accord::v1::DataCategory category = accord::v1::DATA_CATEGORY_UNSPECIFIED;
};

// A subject found by token, with what the agent holds about them.
struct SubjectView {
  int64_t id = 0;
  // Only local_id when the subject's own row was skipped.
  accord::v1::Subject subject;
  std::vector<accord::v1::Record> records;
  std::vector<SkippedRow> skipped;
};

// A referral in this agent's inbox or outbox.
struct StoredReferral {
  int64_t seq = 0;  // arrival order in this store
  accord::v1::ReferralBox box = accord::v1::REFERRAL_BOX_UNSPECIFIED;
  accord::v1::Referral referral;
};

// The store's schema migrations, oldest first: migrations[i] takes a store
// from schema version i to i + 1 (PRAGMA user_version). Append-only. Exposed
// so tests can build a store as an older version left it.
const std::vector<std::string>& AgentStoreMigrations();

class AgentStore {
 private:
  class Connection;

 public:
  // Write operations, valid only inside Write(); see there.
  class Writer {
   public:
    // Inserts or replaces a subject's fields and tokens. Returns true if new.
    absl::StatusOr<bool> UpsertSubject(
        const accord::v1::Subject& subject,
        const std::vector<accord::v1::SubjectToken>& tokens);
    // Inserts or replaces a record; the subject must exist.
    absl::StatusOr<bool> UpsertRecord(const accord::v1::Record& record);
    // The subject with this local id (fields only), NotFound if none.
    absl::StatusOr<accord::v1::Subject> FindSubject(
        const std::string& local_id);
    // Stores a new consent record (history is kept); returns its id.
    // AlreadyExists when the id is taken: a consent is never overwritten.
    absl::StatusOr<std::string> RecordConsent(
        accord::v1::ConsentRecord consent);
    // The consent with this id as stored (withdrawal filled in), NotFound if
    // none.
    absl::StatusOr<accord::v1::ConsentRecord> FindConsent(
        const std::string& consent_id);
    // Records the withdrawal of a consent as a new event; the consent itself
    // is not changed. FailedPrecondition when it was already withdrawn.
    absl::Status WithdrawConsent(const std::string& consent_id, absl::Time at,
                                 const std::string& recorded_by);
    // Stores an engagement; one with the same subject, service and start is
    // the same engagement and is updated (end, needs, worker). Returns its id.
    absl::StatusOr<std::string> RecordEngagement(
        const accord::v1::Engagement& engagement);
    // One person, one local id: what a duplicate check (agent/duplicates.h)
    // and a merge need.
    // Subjects other than the one with local id `self` that hold `token`,
    // the tokens this transaction has yet to write (DeferTokens) included.
    absl::StatusOr<std::vector<int64_t>> SubjectsWithToken(
        const accord::v1::SubjectToken& token, const std::string& self);
    absl::StatusOr<std::string> LocalIdOf(int64_t id);
    // A subject's tokens, those yet to be written included.
    absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensOfSubject(
        int64_t id);
    // Moves everything held under `from_local_id` to `into_local_id`:
    // records, consents (their terms unchanged; only their link to the
    // person moves) and engagements (one the survivor already has, with the
    // same service and start, is the same engagement and is dropped). Then
    // removes `from_local_id` with its tokens and records the merge. Both
    // must be held; NotFound names the one that is not.
    struct MergeCounts {
      int64_t records = 0;
      int64_t consents = 0;
      int64_t engagements = 0;
    };
    absl::StatusOr<MergeCounts> MergeSubject(const std::string& from_local_id,
                                             const std::string& into_local_id);

    // Runs `body` in a savepoint: on error everything it wrote is undone and
    // the enclosing transaction carries on (one bad import row). Not with
    // DeferTokens().
    absl::Status Savepoint(const std::function<absl::Status()>& body);

    // Bulk writes: from now on UpsertSubject keeps the subjects' tokens and
    // WriteDeferredTokens (at the latest, the commit) writes them all, in
    // token order. Tokens are HMAC values, so one subject's land anywhere in
    // the token index; written in order, consecutive inserts share the pages
    // on their way down instead of each reading a different part of the
    // index. Nothing in the transaction may look tokens up before they are
    // written (the store's reads run on other connections and see only
    // committed data).
    void DeferTokens() { defer_tokens_ = true; }
    absl::Status WriteDeferredTokens();

   private:
    friend class AgentStore;
    explicit Writer(Connection& conn) : conn_(conn) {}
    absl::StatusOr<int64_t> SubjectId(const std::string& local_id);
    // id 0: no subject has this local id.
    void Remember(const std::string& local_id, int64_t id) {
      cached_local_id_ = local_id;
      cached_id_ = id;
    }
    struct DeferredToken {
      std::array<char, 32> bytes;
      int64_t kind;
      int64_t subject_id;  // 0: replaced by a later upsert of the subject
    };
    absl::Status InsertToken(const char* bytes, int64_t kind,
                             int64_t subject_id);

    Connection& conn_;
    bool defer_tokens_ = false;
    std::vector<DeferredToken> deferred_tokens_;
    // Where each subject's deferred tokens start in deferred_tokens_.
    absl::flat_hash_map<int64_t, size_t> deferred_of_subject_;
    // The deferred tokens by value and kind (indexes into deferred_tokens_),
    // for SubjectsWithToken.
    absl::flat_hash_map<std::pair<std::array<char, 32>, int64_t>,
                        absl::InlinedVector<size_t, 1>>
        deferred_by_value_;
    // The last subject looked up or written, or found not to exist (an import
    // row looks its subject up, then writes several things for it);
    // forgotten when a savepoint rolls back.
    std::string cached_local_id_;
    int64_t cached_id_ = 0;
  };

  // A consistent view for several reads: one read transaction, so a
  // disclosure sees the person's subject, records and consent as of one
  // instant. Valid only inside Read(); see there.
  // Rows that do not parse are left out of what these return (and appended
  // to `skipped` when given): one bad row never hides the rest.
  class Snapshot {
   public:
    absl::StatusOr<std::vector<int64_t>> FindByToken(
        const accord::v1::SubjectToken& token);
    absl::StatusOr<SubjectView> LoadSubject(int64_t id, bool with_records);
    absl::StatusOr<std::vector<accord::v1::ConsentRecord>> ConsentsOf(
        int64_t subject_id, std::vector<SkippedRow>* skipped = nullptr);
    absl::StatusOr<std::vector<accord::v1::Engagement>> EngagementsOf(
        int64_t subject_id, std::vector<SkippedRow>* skipped = nullptr);

    // For statistics (agent/store_statistics.cc). Every engagement that
    // started in [from, until), with its subject's id, in one scan of the
    // table (`fn` sees each in a message it reuses).
    absl::Status EngagementsStarted(
        absl::Time from, absl::Time until,
        const std::function<void(int64_t subject_id,
                                 const accord::v1::Engagement&)>& fn,
        std::vector<SkippedRow>* skipped = nullptr);
    // The first 16 bytes of each token (in kind order, at most three) of
    // each of `subjects`: what a statistics run keys people by.
    struct TokenPrefixes {
      uint8_t count = 0;
      int8_t kinds[3] = {0, 0, 0};
      char bytes[48];
      absl::string_view view() const { return {bytes, 16u * count}; }
    };
    absl::StatusOr<absl::flat_hash_map<int64_t, TokenPrefixes>> TokenPrefixesOf(
        const absl::flat_hash_set<int64_t>& subjects);
    // The date_of_birth field of each subject with an engagement that
    // started in [from, until) and records one.
    absl::StatusOr<absl::flat_hash_map<int64_t, std::string>> DatesOfBirth(
        absl::Time from, absl::Time until,
        std::vector<SkippedRow>* skipped = nullptr);

   private:
    friend class AgentStore;
    explicit Snapshot(Connection* conn) : conn_(conn) {}
    Connection* conn_;
  };

  static absl::StatusOr<std::unique_ptr<AgentStore>> Open(
      const std::string& path);
  ~AgentStore();

  // Runs `body` in one write transaction; commits if it returns OK, else rolls
  // back. Writers are serialised.
  absl::Status Write(const std::function<absl::Status(Writer&)>& body);

  // Runs `body` on one read snapshot (never blocked by writers).
  absl::Status Read(const std::function<absl::Status(Snapshot&)>& body);

  // Reads, each on a snapshot of its own.
  // Subject ids matching a token (several when people share, e.g., a date of
  // birth and postcode).
  absl::StatusOr<std::vector<int64_t>> FindByToken(
      const accord::v1::SubjectToken& token);
  absl::StatusOr<SubjectView> LoadSubject(int64_t id, bool with_records);
  // A subject's consents, oldest first, with `withdrawn_at` and
  // `withdrawn_by` filled in from the withdrawal events.
  absl::StatusOr<std::vector<accord::v1::ConsentRecord>> ConsentsOf(
      int64_t subject_id);
  absl::StatusOr<std::vector<accord::v1::ConsentRecord>> Consents(
      const std::string& subject_local_id);
  absl::StatusOr<std::vector<accord::v1::Engagement>> EngagementsOf(
      int64_t subject_id);
  absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensOf(
      const std::string& local_id);
  absl::StatusOr<int64_t> SubjectCount();

  // Referrals. MergeReferral stores `referral` when this store has no
  // referral with its id (in `insert_box`; nothing when that is
  // UNSPECIFIED), or replaces the stored copy when `referral` carries more
  // status history, so a repeated or late notice changes nothing. Each
  // change is also appended to the referral events, in the same
  // transaction, under the next durable sequence number (its cursor), which
  // is returned; 0 when nothing changed.
  absl::StatusOr<int64_t> MergeReferral(const accord::v1::Referral& referral,
                                        accord::v1::ReferralBox insert_box);
  // The referral events after `after_cursor`, oldest first, at most `limit`
  // (StoredReferral.seq is the event's cursor, the referral as it stood
  // after the change); UNSPECIFIED box means both.
  absl::StatusOr<std::vector<StoredReferral>> ReferralEventsAfter(
      accord::v1::ReferralBox box, int64_t after_cursor, int limit);
  // The referrals open now (in no final state), in arrival order, and the
  // cursor of the last event they reflect: read as of one instant.
  struct OpenReferrals {
    int64_t cursor = 0;
    std::vector<StoredReferral> referrals;
  };
  absl::StatusOr<OpenReferrals> OpenReferralsNow(accord::v1::ReferralBox box);
  // The cursor of the last referral event, 0 when there is none.
  absl::StatusOr<int64_t> LastReferralCursor();
  absl::StatusOr<std::optional<StoredReferral>> FindReferral(
      const std::string& id);
  absl::StatusOr<std::optional<StoredReferral>> FindOutboxByKey(
      const std::string& idempotency_key);
  // Referrals after `after_seq` in arrival order; UNSPECIFIED box or state
  // means any.
  absl::StatusOr<std::vector<StoredReferral>> ListReferrals(
      accord::v1::ReferralBox box, accord::v1::ReferralState state,
      int64_t after_seq, int limit);

 private:
  class Reader;
  class Checkpointer;
  AgentStore(std::unique_ptr<Connection> writer, std::string path,
             std::unique_ptr<Checkpointer> checkpointer);
  absl::StatusOr<std::unique_ptr<Connection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Connection> conn);
  // The one integer `sql` selects, read on a snapshot of its own.
  absl::StatusOr<int64_t> ReadInteger(const char* sql);
  // The referral row (seq, box, body) `sql` selects with `value` bound, if any.
  absl::StatusOr<std::optional<StoredReferral>> FindOneReferral(
      const char* sql, const std::string& value);

  const std::string path_;
  absl::Mutex write_mu_;
  std::unique_ptr<Connection> writer_ ABSL_GUARDED_BY(write_mu_);
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
  // Copies the WAL back into the database on a thread of its own, so that
  // no commit waits for a checkpoint (and its fsyncs).
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_STORE_H_
