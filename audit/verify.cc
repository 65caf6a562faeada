#include "audit/verify.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/json.h"
#include "audit/merkle.h"

namespace accord::audit {
namespace {

using accord::v1::SignedTreeHead;

class StringLines final : public LineSource {
 public:
  explicit StringLines(absl::string_view text) : text_(text) {}
  absl::StatusOr<bool> Next(absl::string_view* line) override {
    if (pos_ >= text_.size()) return false;
    const size_t nl = text_.find('\n', pos_);
    const size_t end = nl == absl::string_view::npos ? text_.size() : nl;
    *line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

class FileLines final : public LineSource {
 public:
  static constexpr size_t kChunk = 1 << 20;
  FileLines(FILE* f, std::string path) : f_(f), path_(std::move(path)) {
    buf_.reserve(2 * kChunk);
  }
  ~FileLines() override { std::fclose(f_); }

  absl::StatusOr<bool> Next(absl::string_view* line) override {
    while (true) {
      const char* begin = buf_.data() + pos_;
      const size_t avail = buf_.size() - pos_;
      const void* nl = std::memchr(begin, '\n', avail);
      if (nl != nullptr) {
        const size_t len = static_cast<const char*>(nl) - begin;
        *line = absl::string_view(begin, len);
        pos_ += len + 1;
        return true;
      }
      if (eof_) {
        if (avail == 0) return false;
        *line = absl::string_view(begin, avail);
        pos_ = buf_.size();
        return true;
      }
      if (avail > kChunk) {
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ": a line is longer than 1 MiB"));
      }
      buf_.erase(0, pos_);
      pos_ = 0;
      const size_t old = buf_.size();
      buf_.resize(old + kChunk);
      const size_t n = std::fread(buf_.data() + old, 1, kChunk, f_);
      buf_.resize(old + n);
      if (n < kChunk) {
        if (std::ferror(f_))
          return absl::DataLossError(absl::StrCat(path_, ": read error"));
        eof_ = true;
      }
    }
  }

 private:
  FILE* f_;
  std::string path_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

absl::Status LineError(uint64_t line_no, const absl::Status& s) {
  return absl::DataLossError(absl::StrCat("line ", line_no, ": ", s.message()));
}

// Reads on after a forward jump to tell a reordering from a gap.
std::string DescribeJump(LineSource& lines, uint64_t line_no, uint64_t expected,
                         uint64_t got, uint64_t from_seq) {
  absl::string_view line;
  uint64_t n = line_no;
  while (true) {
    auto more = lines.Next(&line);
    if (!more.ok() || !*more) break;
    ++n;
    if (IsTreeHeadLine(line)) break;
    auto row = ParseJsonLine(line);
    if (row.ok() && row->entry.seq() == expected) {
      return absl::StrCat("entries out of order at line ", line_no, ": entry ",
                          got, " comes before entry ", expected, " (line ", n,
                          ")");
    }
  }
  if (expected == from_seq) {
    return absl::StrCat("entry ", expected,
                        " missing: the export starts at entry ", got);
  }
  return absl::StrCat("entry ", expected, " missing: sequence jumps from ",
                      expected - 1, " to ", got);
}

absl::Status CheckRowLeaf(const JsonRow& row) {
  if (EncodeLeaf(row.entry) == row.leaf) return absl::OkStatus();
  const uint64_t seq = row.entry.seq();
  auto leaf_entry = DecodeLeaf(row.leaf);
  if (!leaf_entry.ok()) {
    return absl::DataLossError(
        absl::StrCat("entry ", seq, ": leaf is not a valid audit entry (",
                     leaf_entry.status().message(), ")"));
  }
  const std::vector<std::string> fields =
      DifferingFields(row.entry, *leaf_entry);
  return absl::DataLossError(
      absl::StrCat("entry ", seq, ": leaf does not match its fields",
                   fields.empty() ? "" : " (", absl::StrJoin(fields, ", "),
                   fields.empty() ? "" : ")"));
}

absl::Status ParsePath(JsonCursor& c, std::vector<Hash>* path) {
  std::string s;
  return c.Array([&]() -> absl::Status {
    if (path->size() >= 64) return c.Error("proof path longer than 64 hashes");
    if (auto e = c.String(&s); !e.ok()) return e;
    auto h = HashFromHex(s);
    if (!h.ok()) return c.Error(h.status().message());
    path->push_back(*h);
    return absl::OkStatus();
  });
}

std::vector<Hash> PathOf(
    const google::protobuf::RepeatedPtrField<std::string>& path,
    absl::Status* status) {
  std::vector<Hash> out;
  for (const std::string& p : path) {
    auto h = HashFromBytes(p);
    if (!h.ok()) {
      *status =
          absl::InvalidArgumentError("proof path: every hash must be 32 bytes");
      return {};
    }
    out.push_back(*h);
  }
  return out;
}

void AppendPath(std::string* out,
                const google::protobuf::RepeatedPtrField<std::string>& path) {
  out->push_back('[');
  for (int i = 0; i < path.size(); ++i) {
    if (i) out->push_back(',');
    absl::StrAppend(out, "\"", HexEncode(path[i]), "\"");
  }
  out->push_back(']');
}

// One batch of export rows, copied out of the line source.
struct RowResult {
  bool parsed = false;
  bool leaf_matches = false;
  uint64_t seq = 0;
  Hash leaf_hash;
};

struct Batch {
  static constexpr size_t kLines = 2048;
  std::string text;
  std::vector<std::pair<size_t, size_t>> spans;  // (offset, length) in text
  std::vector<RowResult> results;
  std::string head_line;

  void Clear() {
    text.clear();
    spans.clear();
    head_line.clear();
  }
  void Add(absl::string_view line) {
    spans.emplace_back(text.size(), line.size());
    text.append(line.data(), line.size());
  }
  size_t size() const { return spans.size(); }
  absl::string_view line(size_t i) const {
    return absl::string_view(text).substr(spans[i].first, spans[i].second);
  }
};

// The rest of a batch, then the batches read after it (each followed by its
// tree head line, if it ended at one), then the rest of the source.
class BatchThenSource final : public LineSource {
 public:
  BatchThenSource(std::vector<const Batch*> batches, size_t next,
                  LineSource& source)
      : batches_(std::move(batches)), next_(next), source_(source) {}
  absl::StatusOr<bool> Next(absl::string_view* line) override {
    while (current_ < batches_.size()) {
      const Batch& b = *batches_[current_];
      if (next_ < b.size()) {
        *line = b.line(next_++);
        return true;
      }
      ++current_;
      next_ = 0;
      if (!b.head_line.empty()) {
        *line = b.head_line;
        return true;
      }
    }
    return source_.Next(line);
  }

 private:
  std::vector<const Batch*> batches_;
  size_t current_ = 0;
  size_t next_;
  LineSource& source_;
};

// Parses rows, checks each row's fields against its leaf and hashes the
// leaf, one worker per core, while the caller's thread reads the next batch
// and walks the results of the last one.
class RowCheckers {
 public:
  RowCheckers() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const unsigned workers = std::min(cores, 8u);
    for (unsigned i = 0; i < workers; ++i) {
      threads_.emplace_back([this, i] { WorkerLoop(i); });
    }
  }
  ~RowCheckers() {
    Wait();
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;
    }
    for (auto& t : threads_) t.join();
  }

  // Starts checking `batch`; it must stay untouched until Wait returns.
  void Start(Batch& batch) {
    batch.results.assign(batch.size(), RowResult());
    absl::MutexLock l(&mu_);
    batch_ = &batch;
    pending_ = threads_.size();
    ++generation_;
  }
  void Wait() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](size_t* pending) { return *pending == 0; }, &pending_));
    batch_ = nullptr;
  }

 private:
  // Rows [n*part/parts, n*(part+1)/parts). Stops at the slice's first bad
  // row: the in-order walk stops there or earlier.
  static void CheckSlice(Batch& batch, size_t part, size_t parts, JsonRow* row,
                         std::string* leaf) {
    const size_t n = batch.size();
    const size_t begin = n * part / parts;
    const size_t end = n * (part + 1) / parts;
    for (size_t i = begin; i < end; ++i) {
      RowResult& r = batch.results[i];
      if (!ParseJsonLineInto(batch.line(i), row).ok()) break;
      r.parsed = true;
      r.seq = row->entry.seq();
      EncodeLeafTo(row->entry, leaf);
      r.leaf_matches = *leaf == row->leaf;
      if (!r.leaf_matches) break;
      r.leaf_hash = LeafHash(row->leaf);
    }
  }

  void WorkerLoop(size_t part) {
    JsonRow row;
    std::string leaf;
    uint64_t seen = 0;
    while (true) {
      Batch* batch;
      {
        absl::MutexLock l(&mu_);
        auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || generation_ != seen;
        };
        mu_.Await(absl::Condition(&ready));
        if (stopping_) return;
        seen = generation_;
        batch = batch_;
      }
      CheckSlice(*batch, part, threads_.size(), &row, &leaf);
      absl::MutexLock l(&mu_);
      --pending_;
    }
  }

  absl::Mutex mu_;
  Batch* batch_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<LineSource> LinesFromString(absl::string_view text) {
  return std::make_unique<StringLines>(text);
}

absl::StatusOr<std::unique_ptr<LineSource>> LinesFromFile(
    const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return std::unique_ptr<LineSource>(new FileLines(f, path));
}

absl::StatusOr<ExportSummary> VerifyJsonlExport(LineSource& lines,
                                                const TreeHeadVerifier& key) {
  absl::string_view line;
  uint64_t line_no = 1;
  auto more = lines.Next(&line);
  if (!more.ok()) return more.status();
  if (!*more) return absl::DataLossError("export is empty");
  auto header = ParseExportHeaderLine(line);
  if (!header.ok()) {
    return LineError(1, absl::InvalidArgumentError(
                            absl::StrCat("not an Accord audit export header: ",
                                         header.status().message())));
  }
  auto range = CompactRange::FromNodes(header->from_seq, header->prefix);
  if (!range.ok()) return LineError(1, range.status());

  // Rows are checked in batches: the workers parse and hash one batch (the
  // costly, independent part) while this thread reads the next and then
  // walks the results in line order, so the first bad entry is the one
  // reported.
  Batch batches[2];
  // Reads the next batch; false when there was nothing left to read.
  bool have_head = false;
  bool at_end = false;
  auto read_batch = [&](Batch& batch) -> absl::StatusOr<bool> {
    batch.Clear();
    if (have_head || at_end) return false;
    while (batch.size() < Batch::kLines) {
      auto next = lines.Next(&line);
      if (!next.ok()) return next.status();
      if (!*next) {
        at_end = true;
        break;
      }
      if (IsTreeHeadLine(line)) {
        batch.head_line.assign(line.data(), line.size());
        have_head = true;
        break;
      }
      batch.Add(line);
    }
    return true;
  };
  RowCheckers checkers;
  uint64_t expected = header->from_seq;
  absl::StatusOr<SignedTreeHead> head = absl::DataLossError("");
  auto read = read_batch(batches[0]);
  if (!read.ok()) return read.status();
  bool checking = *read;
  if (checking) checkers.Start(batches[0]);
  const Batch* last = &batches[0];
  for (int cur = 0; checking; cur = 1 - cur) {
    Batch& batch = batches[cur];
    Batch& next = batches[1 - cur];
    read = read_batch(next);
    checkers.Wait();
    if (!read.ok()) return read.status();
    checking = *read;
    if (checking) checkers.Start(next);
    last = &batch;
    for (size_t i = 0; i < batch.size(); ++i) {
      ++line_no;
      const RowResult& r = batch.results[i];
      if (!r.parsed) {
        auto row = ParseJsonLine(batch.line(i));
        return absl::DataLossError(
            absl::StrCat("line ", line_no, " (entry ", expected,
                         "?): ", row.status().message()));
      }
      if (r.seq != expected) {
        if (r.seq < expected) {
          return absl::DataLossError(absl::StrCat(
              "entries out of order at line ", line_no, ": entry ", r.seq,
              r.seq + 1 == expected
                  ? " is repeated"
                  : absl::StrCat(" comes after entry ", expected - 1)));
        }
        std::vector<const Batch*> rest = {&batch};
        if (checking) rest.push_back(&next);
        BatchThenSource source(std::move(rest), i + 1, lines);
        return absl::DataLossError(
            DescribeJump(source, line_no, expected, r.seq, header->from_seq));
      }
      if (!r.leaf_matches) {
        auto row = ParseJsonLine(batch.line(i));
        if (!row.ok()) return row.status();
        if (auto s = CheckRowLeaf(*row); !s.ok()) return s;
        return absl::InternalError(
            absl::StrCat("entry ", r.seq, ": leaf check disagrees"));
      }
      range->Append(r.leaf_hash);
      ++expected;
    }
  }
  const Batch& batch = *last;
  if (have_head) {
    ++line_no;
    head = ParseTreeHeadLine(batch.head_line);
    if (!head.ok()) return LineError(line_no, head.status());
  }
  if (!have_head) {
    return absl::DataLossError(absl::StrCat(
        "export has no signed tree head (truncated after line ", line_no, ")"));
  }
  while (true) {
    more = lines.Next(&line);
    if (!more.ok()) return more.status();
    if (!*more) break;
    ++line_no;
    if (!line.empty())
      return LineError(line_no,
                       absl::DataLossError("data after the tree head"));
  }
  if (head->tree_size() > expected) {
    return absl::DataLossError(absl::StrCat(
        "entry ", expected, " missing: the export ends at entry ", expected - 1,
        " but the tree head covers ", head->tree_size(), " entries"));
  }
  if (head->tree_size() < expected) {
    return absl::DataLossError(absl::StrCat(
        "the export holds entries up to ", expected - 1,
        " but the tree head covers only ", head->tree_size(), " entries"));
  }
  if (auto s = key.Verify(*head); !s.ok()) return s;
  if (AsBytes(range->Root()) != head->root_hash()) {
    return absl::DataLossError(absl::StrCat(
        "root mismatch: export does not match the signed tree head of size ",
        head->tree_size()));
  }
  if (header->to_seq != expected) {
    return LineError(1, absl::DataLossError(absl::StrCat(
                            "header promises entries up to ", header->to_seq,
                            " but the export ends at ", expected)));
  }
  ExportSummary out;
  out.from_seq = header->from_seq;
  out.to_seq = expected;
  out.tree_head = *std::move(head);
  return out;
}

absl::StatusOr<ExportSummary> VerifyJsonlExportFile(
    const std::string& path, const TreeHeadVerifier& key) {
  auto lines = LinesFromFile(path);
  if (!lines.ok()) return lines.status();
  auto out = VerifyJsonlExport(**lines, key);
  if (!out.ok()) {
    return absl::Status(out.status().code(),
                        absl::StrCat(path, ": ", out.status().message()));
  }
  return out;
}

absl::Status VerifyInclusionProof(const accord::v1::InclusionProof& proof,
                                  absl::string_view leaf,
                                  const SignedTreeHead& head,
                                  const TreeHeadVerifier& key) {
  if (auto s = key.Verify(head); !s.ok()) return s;
  if (proof.tree_size() != head.tree_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof is for tree size ", proof.tree_size(),
                     ", the tree head for ", head.tree_size()));
  }
  absl::Status status;
  std::vector<Hash> path = PathOf(proof.path(), &status);
  if (!status.ok()) return status;
  auto root = RootOf(head);
  if (!root.ok()) return root.status();
  return VerifyInclusion(LeafHash(leaf), proof.leaf_index(), proof.tree_size(),
                         path, *root);
}

absl::Status VerifyConsistencyProof(const accord::v1::ConsistencyProof& proof,
                                    const SignedTreeHead& first,
                                    const SignedTreeHead& second,
                                    const TreeHeadVerifier& key) {
  if (auto s = key.Verify(first); !s.ok()) return s;
  if (auto s = key.Verify(second); !s.ok()) return s;
  if (proof.first_size() != first.tree_size() ||
      proof.second_size() != second.tree_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof is between sizes ", proof.first_size(),
                     " and ", proof.second_size(), ", the tree heads are for ",
                     first.tree_size(), " and ", second.tree_size()));
  }
  absl::Status status;
  std::vector<Hash> path = PathOf(proof.path(), &status);
  if (!status.ok()) return status;
  auto r1 = RootOf(first);
  if (!r1.ok()) return r1.status();
  auto r2 = RootOf(second);
  if (!r2.ok()) return r2.status();
  return VerifyConsistency(proof.first_size(), proof.second_size(), *r1, *r2,
                           path);
}

std::string InclusionProofBundle(const accord::v1::InclusionProof& proof,
                                 absl::string_view leaf,
                                 const SignedTreeHead& head) {
  std::string out =
      absl::StrCat("{\"inclusion_proof\":{\"leaf_index\":", proof.leaf_index(),
                   ",\"tree_size\":", proof.tree_size(), ",\"path\":");
  AppendPath(&out, proof.path());
  absl::StrAppend(&out, "},\"leaf\":\"", absl::Base64Escape(leaf),
                  "\",\"tree_head\":");
  AppendTreeHeadJson(&out, head);
  out.append("}\n");
  return out;
}

std::string ConsistencyProofBundle(const accord::v1::ConsistencyProof& proof,
                                   const SignedTreeHead& first,
                                   const SignedTreeHead& second) {
  std::string out = absl::StrCat(
      "{\"consistency_proof\":{\"first_size\":", proof.first_size(),
      ",\"second_size\":", proof.second_size(), ",\"path\":");
  AppendPath(&out, proof.path());
  out.append("},\"first_tree_head\":");
  AppendTreeHeadJson(&out, first);
  out.append(",\"second_tree_head\":");
  AppendTreeHeadJson(&out, second);
  out.append("}\n");
  return out;
}

absl::Status VerifyProofBundle(absl::string_view json,
                               const TreeHeadVerifier& key) {
  JsonCursor c(json);
  bool inclusion = false, consistency = false, have_leaf = false;
  uint64_t a = 0, b = 0;
  std::vector<Hash> path;
  std::string leaf, s;
  std::optional<SignedTreeHead> head, first, second;
  auto proof_member = [&](absl::string_view k, const char* ka,
                          const char* kb) -> absl::Status {
    if (k == ka) return c.Uint(&a);
    if (k == kb) return c.Uint(&b);
    if (k == "path") return ParsePath(c, &path);
    return c.Error(absl::StrCat("unknown proof field \"", k, "\""));
  };
  auto take_head = [&](std::optional<SignedTreeHead>* out) -> absl::Status {
    auto h = ParseTreeHeadJson(c);
    if (!h.ok()) return h.status();
    *out = *std::move(h);
    return absl::OkStatus();
  };
  auto st = c.Object([&](absl::string_view key_name) -> absl::Status {
    if (key_name == "inclusion_proof") {
      inclusion = true;
      return c.Object([&](absl::string_view k) {
        return proof_member(k, "leaf_index", "tree_size");
      });
    }
    if (key_name == "consistency_proof") {
      consistency = true;
      return c.Object([&](absl::string_view k) {
        return proof_member(k, "first_size", "second_size");
      });
    }
    if (key_name == "leaf") {
      if (auto e = c.String(&s); !e.ok()) return e;
      if (!absl::Base64Unescape(s, &leaf)) return c.Error("leaf is not base64");
      have_leaf = true;
      return absl::OkStatus();
    }
    if (key_name == "tree_head") return take_head(&head);
    if (key_name == "first_tree_head") return take_head(&first);
    if (key_name == "second_tree_head") return take_head(&second);
    return c.Error(absl::StrCat("unknown field \"", key_name, "\""));
  });
  if (!st.ok()) return st;
  if (auto e = c.End(); !e.ok()) return e;
  if (inclusion == consistency) {
    return absl::InvalidArgumentError(
        "a proof bundle holds exactly one of inclusion_proof and "
        "consistency_proof");
  }
  if (inclusion) {
    if (!have_leaf || !head.has_value()) {
      return absl::InvalidArgumentError(
          "an inclusion proof bundle needs leaf and tree_head");
    }
    accord::v1::InclusionProof p;
    p.set_leaf_index(a);
    p.set_tree_size(b);
    for (const Hash& h : path) p.add_path(std::string(AsBytes(h)));
    return VerifyInclusionProof(p, leaf, *head, key);
  }
  if (!first.has_value() || !second.has_value()) {
    return absl::InvalidArgumentError(
        "a consistency proof bundle needs first_tree_head and "
        "second_tree_head");
  }
  accord::v1::ConsistencyProof p;
  p.set_first_size(a);
  p.set_second_size(b);
  for (const Hash& h : path) p.add_path(std::string(AsBytes(h)));
  return VerifyConsistencyProof(p, *first, *second, key);
}

}  // namespace accord::audit
