// The agent store's referral inbox and outbox.
#include "absl/strings/str_cat.h"
#include "agent/store.h"
#include "agent/store_internal.h"

namespace accord::agent {

using store_internal::EachRow;
using store_internal::Micros;
using store_internal::ParseBody;
using store_internal::ReadsBack;
using store_internal::Statement;

namespace {
absl::StatusOr<StoredReferral> ReadStoredReferral(Statement& q) {
  auto r = ParseBody<accord::v1::Referral>(q.Blob(2), "referral");
  if (!r.ok()) return r.status();
  StoredReferral out;
  out.seq = q.Int(0);
  out.box = static_cast<accord::v1::ReferralBox>(q.Int(1));
  out.referral = std::move(*r);
  return out;
}
}  // namespace

absl::StatusOr<int64_t> AgentStore::MergeReferral(
    const accord::v1::Referral& referral, accord::v1::ReferralBox insert_box) {
  const std::string body = referral.SerializeAsString();
  if (auto s = ReadsBack<accord::v1::Referral>(body, "referral"); !s.ok())
    return s;
  int64_t cursor = 0;
  absl::Status s = Write([&](Writer& w) -> absl::Status {
    Connection& conn = w.conn_;
    auto q = conn.Prepare("SELECT history, box FROM referrals WHERE id = ?");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, referral.id());
    auto step = (*q)->Next();
    if (!step.ok()) return step.status();
    const int64_t now = Micros(absl::Now());
    int64_t box = 0;
    if (*step == Statement::Step::kRow) {
      if ((*q)->Int(0) >= referral.history_size()) return absl::OkStatus();
      box = (*q)->Int(1);
      (*q)->Reset();
      auto upd = conn.Prepare(
          "UPDATE referrals SET state = ?, history = ?, updated_at = ?, "
          "body = ? WHERE id = ?");
      if (!upd.ok()) return upd.status();
      (*upd)
          ->Bind(1, static_cast<int64_t>(referral.state()))
          .Bind(2, static_cast<int64_t>(referral.history_size()))
          .Bind(3, now)
          .BindBlob(4, body)
          .Bind(5, referral.id());
      if (auto r = (*upd)->Run(); !r.ok()) return r;
    } else {
      if (insert_box == accord::v1::REFERRAL_BOX_UNSPECIFIED)
        return absl::OkStatus();
      box = static_cast<int64_t>(insert_box);
      auto ins = conn.Prepare(
          "INSERT INTO referrals(id, box, state, history, idempotency_key, "
          "updated_at, body) VALUES(?,?,?,?,?,?,?)");
      if (!ins.ok()) return ins.status();
      (*ins)
          ->Bind(1, referral.id())
          .Bind(2, box)
          .Bind(3, static_cast<int64_t>(referral.state()))
          .Bind(4, static_cast<int64_t>(referral.history_size()));
      if (referral.idempotency_key().empty() ||
          insert_box != accord::v1::REFERRAL_BOX_OUTBOX) {
        (*ins)->BindNull(5);
      } else {
        (*ins)->Bind(5, referral.idempotency_key());
      }
      (*ins)->Bind(6, now).BindBlob(7, body);
      if (auto r = (*ins)->Run(); !r.ok()) return r;
    }
    auto ev = conn.Prepare(
        "INSERT INTO referral_events(referral_id, box, at, body) "
        "VALUES(?,?,?,?)");
    if (!ev.ok()) return ev.status();
    (*ev)->Bind(1, referral.id()).Bind(2, box).Bind(3, now).BindBlob(4, body);
    if (auto r = (*ev)->Run(); !r.ok()) return r;
    cursor = conn.db().LastInsertRowId();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return cursor;
}

absl::StatusOr<std::vector<StoredReferral>> AgentStore::ReferralEventsAfter(
    accord::v1::ReferralBox box, int64_t after_cursor, int limit) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  const bool any_box = box == accord::v1::REFERRAL_BOX_UNSPECIFIED;
  auto q = r.Prepare(
      any_box ? "SELECT seq, box, body FROM referral_events WHERE seq > ? "
                "ORDER BY seq LIMIT ?"
              : "SELECT seq, box, body FROM referral_events WHERE box = ? "
                "AND seq > ? ORDER BY seq LIMIT ?");
  if (!q.ok()) return q.status();
  const int first = any_box ? 1 : 2;
  if (!any_box) (*q)->Bind(1, static_cast<int64_t>(box));
  (*q)->Bind(first, after_cursor).Bind(first + 1, static_cast<int64_t>(limit));
  std::vector<StoredReferral> out;
  auto s = EachRow(**q, [&]() -> absl::Status {
    auto one = ReadStoredReferral(**q);
    if (!one.ok()) return one.status();
    out.push_back(std::move(*one));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<AgentStore::OpenReferrals> AgentStore::OpenReferralsNow(
    accord::v1::ReferralBox box) {
  OpenReferrals out;
  // One read transaction: the referrals as of the cursor read with them.
  absl::Status s = Read([&](Snapshot& snap) -> absl::Status {
    auto last = snap.conn_->Prepare(
        "SELECT COALESCE(MAX(seq), 0) FROM referral_events");
    if (!last.ok()) return last.status();
    auto step = (*last)->Next();
    if (!step.ok()) return step.status();
    out.cursor = (*last)->Int(0);
    (*last)->Reset();
    auto q = snap.conn_->Prepare(
        "SELECT seq, box, body FROM referrals WHERE (? = 0 OR box = ?) AND "
        "state NOT IN (?, ?, ?, ?) ORDER BY seq");
    if (!q.ok()) return q.status();
    (*q)->Bind(1, static_cast<int64_t>(box)).Bind(2, static_cast<int64_t>(box));
    int param = 3;
    for (auto final_state : {accord::v1::REFERRAL_STATE_DECLINED,
                             accord::v1::REFERRAL_STATE_CLOSED,
                             accord::v1::REFERRAL_STATE_WITHDRAWN,
                             accord::v1::REFERRAL_STATE_EXPIRED}) {
      (*q)->Bind(param++, static_cast<int64_t>(final_state));
    }
    return EachRow(**q, [&]() -> absl::Status {
      auto one = ReadStoredReferral(**q);
      if (!one.ok()) return one.status();
      out.referrals.push_back(std::move(*one));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<int64_t> AgentStore::LastReferralCursor() {
  return ReadInteger("SELECT COALESCE(MAX(seq), 0) FROM referral_events");
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindReferral(
    const std::string& id) {
  return FindOneReferral("SELECT seq, box, body FROM referrals WHERE id = ?",
                         id);
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindOutboxByKey(
    const std::string& idempotency_key) {
  return FindOneReferral(
      "SELECT seq, box, body FROM referrals WHERE idempotency_key = ? AND "
      "box = 2",
      idempotency_key);
}

absl::StatusOr<std::optional<StoredReferral>> AgentStore::FindOneReferral(
    const char* sql, const std::string& value) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(sql);
  if (!q.ok()) return q.status();
  (*q)->Bind(1, value);
  auto step = (*q)->Next();
  if (!step.ok()) return step.status();
  if (*step != Statement::Step::kRow) return std::optional<StoredReferral>();
  auto out = ReadStoredReferral(**q);
  if (!out.ok()) return out.status();
  return std::optional<StoredReferral>(std::move(*out));
}

absl::StatusOr<std::vector<StoredReferral>> AgentStore::ListReferrals(
    accord::v1::ReferralBox box, accord::v1::ReferralState state,
    int64_t after_seq, int limit) {
  Reader r(this);
  if (auto s = r.Acquire(); !s.ok()) return s;
  auto q = r.Prepare(
      "SELECT seq, box, body FROM referrals WHERE seq > ? "
      "AND (? = 0 OR box = ?) AND (? = 0 OR state = ?) ORDER BY seq LIMIT ?");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, after_seq)
      .Bind(2, static_cast<int64_t>(box))
      .Bind(3, static_cast<int64_t>(box))
      .Bind(4, static_cast<int64_t>(state))
      .Bind(5, static_cast<int64_t>(state))
      .Bind(6, static_cast<int64_t>(limit));
  std::vector<StoredReferral> out;
  while (true) {
    auto step = (*q)->Next();
    if (!step.ok()) return step.status();
    if (*step == Statement::Step::kDone) break;
    auto one = ReadStoredReferral(**q);
    if (!one.ok()) return one.status();
    out.push_back(std::move(*one));
  }
  return out;
}

}  // namespace accord::agent
