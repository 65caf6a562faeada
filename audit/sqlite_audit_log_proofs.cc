// Proofs from the SQLite audit log's stored subtree hashes, and signed tree
// heads for a given size.
#include "absl/strings/str_cat.h"
#include "audit/sqlite_audit_log_impl.h"

namespace accord::audit::sqlite_log {

absl::StatusOr<uint64_t> SqliteAuditLog::ResolveSize(uint64_t tree_size) {
  if (tree_size == 0) {
    auto head = LatestTreeHead();
    if (!head.ok()) return head.status();
    return head->tree_size();
  }
  const uint64_t durable = durable_size_.load();
  if (tree_size > durable) {
    return absl::OutOfRangeError(absl::StrCat(
        "tree_size ", tree_size, " exceeds the log's size ", durable));
  }
  return tree_size;
}

absl::StatusOr<accord::v1::InclusionProof> SqliteAuditLog::InclusionProof(
    uint64_t leaf_index, uint64_t tree_size) {
  auto size = ResolveSize(tree_size);
  if (!size.ok()) return size.status();
  if (leaf_index >= *size) {
    return absl::OutOfRangeError(absl::StrCat(
        "leaf_index ", leaf_index, " is not in the tree of size ", *size));
  }
  absl::MutexLock l(&read_mu_);
  reader_->ClearCache();
  auto path = MakeInclusionProof(*reader_, leaf_index, *size);
  if (!path.ok()) return path.status();
  accord::v1::InclusionProof out;
  out.set_leaf_index(leaf_index);
  out.set_tree_size(*size);
  for (const Hash& h : *path) out.add_path(std::string(AsBytes(h)));
  return out;
}

absl::StatusOr<accord::v1::ConsistencyProof> SqliteAuditLog::ConsistencyProof(
    uint64_t first_size, uint64_t second_size) {
  auto second = ResolveSize(second_size);
  if (!second.ok()) return second.status();
  if (first_size > *second) {
    return absl::InvalidArgumentError(absl::StrCat(
        "first_size ", first_size, " exceeds second_size ", *second));
  }
  absl::MutexLock l(&read_mu_);
  reader_->ClearCache();
  auto path = MakeConsistencyProof(*reader_, first_size, *second);
  if (!path.ok()) return path.status();
  accord::v1::ConsistencyProof out;
  out.set_first_size(first_size);
  out.set_second_size(*second);
  for (const Hash& h : *path) out.add_path(std::string(AsBytes(h)));
  return out;
}

absl::StatusOr<SignedTreeHead> SqliteAuditLog::TreeHeadAt(uint64_t tree_size) {
  if (tree_size > durable_size_.load()) {
    return absl::OutOfRangeError(absl::StrCat("tree_size ", tree_size,
                                              " exceeds the log's size ",
                                              durable_size_.load()));
  }
  {
    absl::MutexLock l(&mu_);
    if (latest_head_.has_value() && latest_head_->tree_size() == tree_size) {
      return *latest_head_;
    }
  }
  absl::StatusOr<Hash> root;
  {
    absl::MutexLock l(&read_mu_);
    auto st =
        ReadStatement(absl::StrCat(kSelectHeadColumns, "WHERE tree_size = ?"));
    if (!st.ok()) return st.status();
    Statement& q = **st;
    q.Bind(1, static_cast<int64_t>(tree_size));
    auto step = q.Next();
    std::optional<SignedTreeHead> stored;
    if (step.ok() && *step == Step::kRow) stored = HeadFromRow(q);
    q.Reset();
    if (!step.ok()) return step.status();
    if (stored.has_value()) return *stored;
    reader_->ClearCache();
    root = RootFromStore(*reader_, tree_size);
  }
  if (!root.ok()) return root.status();
  return signer_->Sign(tree_size, *root, options_.clock->Now());
}

}  // namespace accord::audit::sqlite_log
