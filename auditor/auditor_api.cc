#include "auditor/auditor_api.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "runtime/clock.h"
#include "runtime/textproto.h"

namespace accord::auditor {
namespace {

audit::PageRequest Page(uint32_t size, const std::string& token) {
  audit::PageRequest p;
  p.page_size = size;
  p.page_token = token;
  return p;
}

}  // namespace

template <typename Resp, typename Body>
void AuditorApi::Run(const Caller& caller, const char* method,
                     std::string detail, Done<Resp> done, Body body) {
  access_->AuthoriseRead(
      caller, method, detail,
      [this, done = std::move(done),
       body = std::move(body)](absl::Status s) mutable {
        if (!s.ok()) return done(s);
        // The access is durable; the body reads (and may wait on the log's
        // writer), so it runs on the worker, not on this callback's thread.
        worker_.Post([done = std::move(done), body = std::move(body)]() {
          Resp out;
          absl::Status st = body(&out);
          if (!st.ok()) return done(st);
          done(std::move(out));
        });
      });
}

void AuditorApi::Search(const Caller& caller,
                        const accord::v1::AuditSearchRequest& req,
                        Done<accord::v1::AuditSearchResponse> done) {
  Run<accord::v1::AuditSearchResponse>(
      caller, "AuditSearch", "", std::move(done),
      [this, req](accord::v1::AuditSearchResponse* out) -> absl::Status {
        if (auto s = ValidateMessage(req); !s.ok()) return s;
        audit::AuditQuery q;
        q.caller_org = req.caller_org();
        q.user_id = req.user_id();
        q.subject = req.subject();
        q.purpose = req.purpose();
        q.agreement_id = req.agreement_id();
        q.decision = req.decision();
        if (req.time().has_from()) q.from = FromProtoTime(req.time().from());
        if (req.time().has_until()) q.until = FromProtoTime(req.time().until());
        auto page = log_->Search(q, Page(req.page_size(), req.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::SubjectAccessReport(
    const Caller& caller, const accord::v1::SubjectAccessRequest& req,
    Done<accord::v1::SubjectAccessResponse> done) {
  Run<accord::v1::SubjectAccessResponse>(
      caller, "SubjectAccessReport", "", std::move(done),
      [this, req](accord::v1::SubjectAccessResponse* out) -> absl::Status {
        if (auto s = ValidateMessage(req); !s.ok()) return s;
        const std::vector<accord::v1::SubjectToken> tokens(
            req.subjects().begin(), req.subjects().end());
        std::vector<accord::v1::AuditEntry> all;
        audit::PageRequest page = Page(audit::kMaxPageSize, "");
        do {
          auto p = log_->SubjectAccess(tokens, page);
          if (!p.ok()) return p.status();
          for (auto& e : p->entries) all.push_back(std::move(e));
          page.page_token = p->next_page_token;
        } while (!page.page_token.empty());
        out->set_report(audit::SubjectAccessReport(all));
        for (auto& e : all) *out->add_disclosures() = std::move(e);
        return absl::OkStatus();
      });
}

void AuditorApi::ReviewQueue(const Caller& caller,
                             const accord::v1::ReviewQueueRequest& req,
                             Done<accord::v1::ReviewQueueResponse> done) {
  Run<accord::v1::ReviewQueueResponse>(
      caller, "ReviewQueue", "", std::move(done),
      [this, req](accord::v1::ReviewQueueResponse* out) -> absl::Status {
        auto page = log_->ReviewQueue(Page(req.page_size(), req.page_token()));
        if (!page.ok()) return page.status();
        for (auto& e : page->entries) *out->add_entries() = std::move(e);
        out->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

void AuditorApi::MarkReviewed(const Caller& caller,
                              const accord::v1::MarkReviewedRequest& req,
                              Done<accord::v1::MarkReviewedResponse> done) {
  if (auto s = ValidateMessage(req); !s.ok()) return done(s);
  access_->AuthoriseRead(
      caller, "MarkReviewed/authorise", absl::StrCat("seq ", req.seq()),
      [this, caller, req, done = std::move(done)](absl::Status s) {
        if (!s.ok()) return done(s);
        log_->MarkReviewed(req.seq(), access_->ReviewerOf(caller), req.note(),
                           [done](absl::StatusOr<uint64_t> seq) {
                             if (!seq.ok()) return done(seq.status());
                             accord::v1::MarkReviewedResponse resp;
                             resp.set_audit_seq(*seq);
                             done(std::move(resp));
                           });
      });
}

void AuditorApi::GetTreeHead(const Caller& caller,
                             Done<accord::v1::SignedTreeHead> done) {
  Run<accord::v1::SignedTreeHead>(
      caller, "GetTreeHead", "", std::move(done),
      [this](accord::v1::SignedTreeHead* out) -> absl::Status {
        auto sth = log_->SignTreeHeadNow();
        if (!sth.ok()) return sth.status();
        *out = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetInclusionProof(
    const Caller& caller, const accord::v1::InclusionProofRequest& req,
    Done<accord::v1::InclusionProofResponse> done) {
  Run<accord::v1::InclusionProofResponse>(
      caller, "GetInclusionProof", absl::StrCat("leaf ", req.leaf_index()),
      std::move(done),
      [this, req](accord::v1::InclusionProofResponse* out) -> absl::Status {
        absl::StatusOr<accord::v1::SignedTreeHead> sth =
            req.tree_size() == 0 ? log_->SignTreeHeadNow()
                                 : log_->TreeHeadAt(req.tree_size());
        if (!sth.ok()) return sth.status();
        auto proof = log_->InclusionProof(req.leaf_index(), sth->tree_size());
        if (!proof.ok()) return proof.status();
        auto entry = log_->GetEntry(req.leaf_index());
        if (!entry.ok()) return entry.status();
        *out->mutable_proof() = std::move(*proof);
        *out->mutable_entry() = std::move(*entry);
        *out->mutable_tree_head() = std::move(*sth);
        return absl::OkStatus();
      });
}

void AuditorApi::GetConsistencyProof(
    const Caller& caller, const accord::v1::ConsistencyProofRequest& req,
    Done<accord::v1::ConsistencyProof> done) {
  Run<accord::v1::ConsistencyProof>(
      caller, "GetConsistencyProof",
      absl::StrCat(req.first_size(), "..", req.second_size()), std::move(done),
      [this, req](accord::v1::ConsistencyProof* out) -> absl::Status {
        auto proof =
            log_->ConsistencyProof(req.first_size(), req.second_size());
        if (!proof.ok()) return proof.status();
        *out = std::move(*proof);
        return absl::OkStatus();
      });
}

void AuditorApi::AuthoriseExport(const Caller& caller,
                                 const accord::v1::ExportRequest& req,
                                 std::function<void(absl::Status)> done) {
  access_->AuthoriseRead(caller, "AuditExport",
                         absl::StrCat(req.from_seq(), "..", req.to_seq()),
                         std::move(done));
}

absl::Status AuditorApi::Export(const accord::v1::ExportRequest& req,
                                const audit::AuditLog::ExportSink& sink) {
  const auto format = req.format() == accord::v1::EXPORT_FORMAT_CSV
                          ? audit::ExportFormat::kCsv
                          : audit::ExportFormat::kJsonLines;
  return log_->Export(req.from_seq(), req.to_seq(), format, sink);
}

}  // namespace accord::auditor
