#include "gateway/referral_store.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "gateway/referral_state.h"
#include "runtime/clock.h"

namespace accord::gateway {
namespace {

using accord::v1::Referral;
using sqlite::Statement;

const std::vector<std::string>& Migrations() {
  static const auto* kMigrations = new std::vector<std::string>{
      R"sql(
      CREATE TABLE referrals(
        id TEXT PRIMARY KEY,
        from_org TEXT NOT NULL,
        to_org TEXT NOT NULL,
        idempotency_key TEXT,          -- NULL when the sender gave none
        previous_id TEXT,
        state INTEGER NOT NULL,
        history INTEGER NOT NULL,      -- number of status entries
        created_at INTEGER NOT NULL,
        body BLOB NOT NULL);           -- accord.v1.Referral (payload sealed)
      CREATE UNIQUE INDEX referrals_key ON referrals(from_org, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
      CREATE INDEX referrals_previous ON referrals(previous_id);
      CREATE TABLE tasks(
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,         -- 1 deliver, 2 notify
        referral_id TEXT NOT NULL REFERENCES referrals(id),
        target_org TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        version INTEGER NOT NULL DEFAULT 0,  -- notify: history entries to carry
        done INTEGER NOT NULL DEFAULT 0);
      CREATE INDEX tasks_due ON tasks(done, next_attempt_at);
      )sql",
  };
  return *kMigrations;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

absl::StatusOr<Referral> Parse(absl::string_view blob) {
  Referral r;
  if (!r.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
    return absl::DataLossError("stored referral is corrupt");
  }
  return r;
}

// The referral in the first row (its body in column 0) of `q`, if any.
absl::StatusOr<std::optional<Referral>> FirstReferral(Statement& q) {
  auto step = q.Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) return std::optional<Referral>();
  auto r = Parse(q.Blob(0));
  if (!r.ok()) return r.status();
  return std::optional<Referral>(std::move(*r));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReferralStore>> ReferralStore::Open(
    const std::string& path) {
  sqlite::Database::Options options;
  options.synchronous_full = false;
  auto db = sqlite::Database::Open(path, options);
  if (!db.ok()) return db.status();
  if (auto s = (*db)->Migrate(Migrations()); !s.ok()) return s;
  return std::unique_ptr<ReferralStore>(new ReferralStore(std::move(*db)));
}

absl::StatusOr<std::optional<Referral>> ReferralStore::FindLocked(
    const std::string& id) {
  auto q = db_->Prepare("SELECT body FROM referrals WHERE id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, id);
  return FirstReferral(*q);
}

absl::StatusOr<std::optional<Referral>> ReferralStore::Find(
    const std::string& id) {
  absl::MutexLock lock(&mu_);
  return FindLocked(id);
}

absl::StatusOr<std::optional<Referral>> ReferralStore::FindByKey(
    const std::string& from_org, const std::string& idempotency_key) {
  absl::MutexLock lock(&mu_);
  auto q = db_->Prepare(
      "SELECT body FROM referrals WHERE from_org = ? AND idempotency_key = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, from_org).Bind(2, idempotency_key);
  return FirstReferral(*q);
}

absl::Status ReferralStore::QueueLocked(TaskKind kind,
                                        const std::string& referral_id,
                                        const std::string& target,
                                        absl::Time now, int version) {
  if (kind == TaskKind::kNotify) {
    // One pending notification per (referral, organisation) is enough: it
    // carries the referral as it is when sent, and is done only once it has
    // carried `version` history entries.
    auto upd = db_->Prepare(
        "UPDATE tasks SET version = ? WHERE kind = 2 AND referral_id = ? AND "
        "target_org = ? AND done = 0");
    if (!upd.ok()) return upd.status();
    upd->Bind(1, static_cast<int64_t>(version))
        .Bind(2, referral_id)
        .Bind(3, target);
    if (auto s = upd->Run(); !s.ok()) return s;
    if (db_->Changes() > 0) return absl::OkStatus();
  }
  auto ins = db_->Prepare(
      "INSERT INTO tasks(kind, referral_id, target_org, next_attempt_at, "
      "version) VALUES(?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  ins->Bind(1, static_cast<int64_t>(kind))
      .Bind(2, referral_id)
      .Bind(3, target)
      .Bind(4, Micros(now))
      .Bind(5, static_cast<int64_t>(version));
  return ins->Run();
}

absl::StatusOr<ReferralStore::Inserted> ReferralStore::Insert(
    const Referral& referral, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Inserted out;
  absl::Status s = sqlite::InTransaction(*db_, [&]() -> absl::Status {
    mu_.AssertHeld();  // runs inside the caller's lock
    auto existing = FindLocked(referral.id());
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      if ((*existing)->from_org() != referral.from_org()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "field referral.id: '", referral.id(), "' is already in use"));
      }
      out.referral = std::move(**existing);
      return absl::OkStatus();
    }
    if (!referral.idempotency_key().empty()) {
      auto q = db_->Prepare(
          "SELECT body FROM referrals WHERE from_org = ? AND "
          "idempotency_key = ?");
      if (!q.ok()) return q.status();
      q->Bind(1, referral.from_org()).Bind(2, referral.idempotency_key());
      auto step = q->Next();
      if (!step.ok()) return step.status();
      if (*step == Statement::Step::kRow) {
        auto r = Parse(q->Blob(0));
        if (!r.ok()) return r.status();
        out.referral = std::move(*r);
        return absl::OkStatus();
      }
    }
    auto ins = db_->Prepare(
        "INSERT INTO referrals(id, from_org, to_org, idempotency_key, "
        "previous_id, state, history, created_at, body) "
        "VALUES(?,?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, referral.id())
        .Bind(2, referral.from_org())
        .Bind(3, referral.to_org());
    if (referral.idempotency_key().empty()) {
      ins->BindNull(4);
    } else {
      ins->Bind(4, referral.idempotency_key());
    }
    if (referral.previous_referral_id().empty()) {
      ins->BindNull(5);
    } else {
      ins->Bind(5, referral.previous_referral_id());
    }
    ins->Bind(6, static_cast<int64_t>(referral.state()))
        .Bind(7, static_cast<int64_t>(referral.history_size()))
        .Bind(8, Micros(now))
        .BindBlob(9, referral.SerializeAsString());
    if (auto st = ins->Run(); !st.ok()) return st;
    if (auto st = QueueLocked(TaskKind::kDeliver, referral.id(),
                              referral.to_org(), now, 0);
        !st.ok()) {
      return st;
    }
    out.referral = referral;
    out.created = true;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<Referral> ReferralStore::Apply(
    const std::string& id, int expected_history,
    const accord::v1::ReferralStatus& status,
    const std::vector<std::string>& notify, absl::Time now,
    int64_t complete_task) {
  absl::MutexLock lock(&mu_);
  Referral out;
  absl::Status s = sqlite::InTransaction(*db_, [&]() -> absl::Status {
    mu_.AssertHeld();  // runs inside the caller's lock
    auto existing = FindLocked(id);
    if (!existing.ok()) return existing.status();
    if (!existing->has_value()) {
      return absl::NotFoundError(absl::StrCat("no referral '", id, "'"));
    }
    Referral r = std::move(**existing);
    if (r.history_size() != expected_history) {
      return absl::AbortedError(
          absl::StrCat("referral ", id,
                       " changed while this change was decided; try again"));
    }
    ApplyTransition(r, status);
    auto upd = db_->Prepare(
        "UPDATE referrals SET state = ?, history = ?, body = ? WHERE id = ?");
    if (!upd.ok()) return upd.status();
    upd->Bind(1, static_cast<int64_t>(r.state()))
        .Bind(2, static_cast<int64_t>(r.history_size()))
        .BindBlob(3, r.SerializeAsString())
        .Bind(4, id);
    if (auto st = upd->Run(); !st.ok()) return st;
    for (const auto& org : notify) {
      if (auto st =
              QueueLocked(TaskKind::kNotify, id, org, now, r.history_size());
          !st.ok())
        return st;
    }
    if (complete_task != 0) {
      auto done = db_->Prepare("UPDATE tasks SET done = 1 WHERE id = ?");
      if (!done.ok()) return done.status();
      done->Bind(1, complete_task);
      if (auto st = done->Run(); !st.ok()) return st;
    }
    out = std::move(r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Referral>> ReferralStore::Chain(
    const std::string& id) {
  absl::MutexLock lock(&mu_);
  // Back to the first referral of the chain (bounded against cycles).
  std::string root = id;
  for (int i = 0; i < 64; ++i) {
    auto r = FindLocked(root);
    if (!r.ok()) return r.status();
    if (!r->has_value()) return absl::NotFoundError("no referral " + root);
    if ((*r)->previous_referral_id().empty()) break;
    root = (*r)->previous_referral_id();
  }
  // Then forward, breadth first.
  std::vector<Referral> out;
  std::vector<std::string> frontier = {root};
  std::set<std::string> seen;
  while (!frontier.empty() && out.size() < 256) {
    std::string next = frontier.front();
    frontier.erase(frontier.begin());
    if (!seen.insert(next).second) continue;
    auto r = FindLocked(next);
    if (!r.ok()) return r.status();
    if (!r->has_value()) continue;
    out.push_back(std::move(**r));
    auto q = db_->Prepare(
        "SELECT id FROM referrals WHERE previous_id = ? ORDER BY created_at");
    if (!q.ok()) return q.status();
    q->Bind(1, next);
    while (true) {
      auto step = q->Next();
      if (!step.ok()) return step.status();
      if (*step == Statement::Step::kDone) break;
      frontier.push_back(std::string(q->Text(0)));
    }
  }
  return out;
}

absl::StatusOr<std::vector<ReferralTask>> ReferralStore::DueTasks(
    absl::Time now, const std::set<int64_t>& busy, int limit) {
  absl::MutexLock lock(&mu_);
  auto q = db_->Prepare(
      "SELECT id, kind, referral_id, target_org, attempts, next_attempt_at "
      "FROM tasks WHERE done = 0 AND next_attempt_at <= ? "
      "ORDER BY next_attempt_at, id LIMIT ?");
  if (!q.ok()) return q.status();
  q->Bind(1, Micros(now)).Bind(2, static_cast<int64_t>(limit + busy.size()));
  std::vector<ReferralTask> out;
  while (static_cast<int>(out.size()) < limit) {
    auto step = q->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    ReferralTask t;
    t.id = q->Int(0);
    if (busy.count(t.id)) continue;
    t.kind = static_cast<TaskKind>(q->Int(1));
    t.referral_id = std::string(q->Text(2));
    t.target_org = std::string(q->Text(3));
    t.attempts = static_cast<int>(q->Int(4));
    t.next_attempt = absl::FromUnixMicros(q->Int(5));
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::optional<absl::Time>> ReferralStore::NextDue() {
  absl::MutexLock lock(&mu_);
  auto q =
      db_->Prepare("SELECT min(next_attempt_at) FROM tasks WHERE done = 0");
  if (!q.ok()) return q.status();
  auto step = q->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow || q->IsNull(0))
    return std::optional<absl::Time>();
  return std::optional<absl::Time>(absl::FromUnixMicros(q->Int(0)));
}

absl::Status ReferralStore::CompleteTask(int64_t task_id, int carried) {
  absl::MutexLock lock(&mu_);
  auto q =
      db_->Prepare("UPDATE tasks SET done = 1 WHERE id = ? AND version <= ?");
  if (!q.ok()) return q.status();
  q->Bind(1, task_id).Bind(2, static_cast<int64_t>(carried));
  return q->Run();
}

absl::Status ReferralStore::RetryTask(int64_t task_id, absl::Time next_attempt,
                                      const std::string& last_error) {
  absl::MutexLock lock(&mu_);
  auto q = db_->Prepare(
      "UPDATE tasks SET attempts = attempts + 1, next_attempt_at = ?, "
      "last_error = ? WHERE id = ?");
  if (!q.ok()) return q.status();
  q->Bind(1, Micros(next_attempt)).Bind(2, last_error).Bind(3, task_id);
  return q->Run();
}

absl::StatusOr<int64_t> ReferralStore::PendingTaskCount() {
  absl::MutexLock lock(&mu_);
  auto q = db_->Prepare("SELECT count(*) FROM tasks WHERE done = 0");
  if (!q.ok()) return q.status();
  auto step = q->Next();
  if (!step.ok()) return step.status();
  return q->Int(0);
}

}  // namespace accord::gateway
