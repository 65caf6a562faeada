// The agent store's schema: its migrations, oldest first, and the SQL
// function the token migration needs.
#include <array>

#include "agent/store_internal.h"

namespace accord::agent::store_internal {

const std::vector<std::string>& Migrations() {  // see AgentStoreMigrations
  static const auto* kMigrations = new std::vector<std::string>{
      // Version 1: subjects, tokens, records, consent (append-only history),
      // engagements.
      R"sql(
      CREATE TABLE subjects(
        id INTEGER PRIMARY KEY,
        local_id TEXT NOT NULL UNIQUE,
        body BLOB NOT NULL,            -- accord.v1.Subject
        updated_at INTEGER NOT NULL);
      CREATE TABLE subject_tokens(
        token TEXT NOT NULL,
        kind INTEGER NOT NULL,
        subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        PRIMARY KEY(token, kind, subject_id)) WITHOUT ROWID;
      CREATE INDEX subject_tokens_subject ON subject_tokens(subject_id);
      CREATE TABLE records(
        id INTEGER PRIMARY KEY,
        local_id TEXT NOT NULL UNIQUE,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        category INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Record
      CREATE INDEX records_subject ON records(subject_id);
      CREATE TABLE consents(
        id TEXT PRIMARY KEY,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        body BLOB NOT NULL);           -- accord.v1.ConsentRecord, withdrawn_at stamped
      CREATE INDEX consents_subject ON consents(subject_id);
      CREATE TABLE consent_events(
        seq INTEGER PRIMARY KEY,
        consent_id TEXT NOT NULL REFERENCES consents(id),
        event TEXT NOT NULL,           -- 'given' or 'withdrawn'
        at INTEGER NOT NULL,
        recorded_by TEXT NOT NULL);
      CREATE TABLE engagements(
        id INTEGER PRIMARY KEY,
        subject_id INTEGER NOT NULL REFERENCES subjects(id),
        service TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Engagement
      CREATE INDEX engagements_subject ON engagements(subject_id);
      )sql",
      // Version 2: consent history is append-only, enforced by the schema.
      // A withdrawal is an event of its own; the consent is never changed.
      R"sql(
      CREATE INDEX consent_events_consent ON consent_events(consent_id, event);
      CREATE TRIGGER consents_never_updated BEFORE UPDATE ON consents
        BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
      CREATE TRIGGER consents_never_deleted BEFORE DELETE ON consents
        BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
      CREATE TRIGGER consent_events_never_updated BEFORE UPDATE ON consent_events
        BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
      CREATE TRIGGER consent_events_never_deleted BEFORE DELETE ON consent_events
        BEGIN SELECT RAISE(ABORT, 'consent history is append-only'); END;
      CREATE INDEX engagements_identity ON engagements(subject_id, service,
                                                       started_at);
      )sql",
      // Version 3: referral inbox (delivered to this agent) and outbox (sent by
      // it).
      R"sql(
      CREATE TABLE referrals(
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        box INTEGER NOT NULL,          -- accord.v1.ReferralBox
        state INTEGER NOT NULL,
        history INTEGER NOT NULL,      -- status entries held
        idempotency_key TEXT,
        updated_at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Referral, payload sealed
      CREATE INDEX referrals_box ON referrals(box, seq);
      CREATE INDEX referrals_key ON referrals(idempotency_key);
      )sql",
      // Version 4: tokens are kept as their 32 bytes rather than 64 hex
      // characters, which halves the token index and the subject index (an
      // index of a WITHOUT ROWID table carries its key) and the cost of
      // comparing keys. accord_unhex is registered on the connection by
      // AgentStore::Open and refuses anything but a token's hex form, so a
      // store holding a malformed token fails to upgrade rather than losing
      // it. Hex text sorts as its bytes do, so the copy is in key order.
      R"sql(
      CREATE TABLE subject_tokens_v4(
        token BLOB NOT NULL,           -- HMAC-SHA256 (linkage/tokens.h), 32 bytes
        kind INTEGER NOT NULL,
        subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        PRIMARY KEY(token, kind, subject_id)) WITHOUT ROWID;
      INSERT INTO subject_tokens_v4(token, kind, subject_id)
        SELECT accord_unhex(token), kind, subject_id FROM subject_tokens
        ORDER BY token, kind, subject_id;
      DROP TABLE subject_tokens;
      ALTER TABLE subject_tokens_v4 RENAME TO subject_tokens;
      CREATE INDEX subject_tokens_subject ON subject_tokens(subject_id);
      )sql",
      // Version 5: one person, one local id. Two local ids found to be one
      // person can be merged: her consents then move to the surviving id,
      // so a consent's link to its person (subject_id) may change; its terms
      // (id, body) still never do. Each merge is recorded.
      R"sql(
      DROP TRIGGER consents_never_updated;
      CREATE TRIGGER consents_never_updated BEFORE UPDATE OF id, body
        ON consents
        BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END;
      CREATE TABLE subject_merges(
        seq INTEGER PRIMARY KEY,
        from_local_id TEXT NOT NULL,
        into_local_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        records INTEGER NOT NULL,
        consents INTEGER NOT NULL,
        engagements INTEGER NOT NULL);
      CREATE TRIGGER subject_merges_never_updated BEFORE UPDATE ON subject_merges
        BEGIN SELECT RAISE(ABORT, 'the merge history is append-only'); END;
      CREATE TRIGGER subject_merges_never_deleted BEFORE DELETE ON subject_merges
        BEGIN SELECT RAISE(ABORT, 'the merge history is append-only'); END;
      )sql",
      // Version 6: every change to a referral is an event with a durable
      // sequence number (never reused: AUTOINCREMENT), so that a watcher
      // can resume from the last event it saw without loss or repeats.
      R"sql(
      CREATE TABLE referral_events(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        referral_id TEXT NOT NULL,
        box INTEGER NOT NULL,          -- accord.v1.ReferralBox
        at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Referral after the change
      CREATE INDEX referral_events_box ON referral_events(box, seq);
      )sql",

  };
  return *kMigrations;
}

// accord_unhex(text): the token's bytes, for schema migration 4.
void UnhexToken(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  (void)argc;
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  char bytes[kTokenBytes];
  if (text == nullptr ||
      !TokenBytes(absl::string_view(
                      text, static_cast<size_t>(sqlite3_value_bytes(argv[0]))),
                  bytes)) {
    sqlite3_result_error(ctx, "a stored subject token is not 64 hex digits",
                         -1);
    return;
  }
  sqlite3_result_blob(ctx, bytes, kTokenBytes, SQLITE_TRANSIENT);
}

}  // namespace accord::agent::store_internal
