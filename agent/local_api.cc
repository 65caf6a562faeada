#include "agent/local_api.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "agent/consent_terms.h"
#include "agent/duplicates.h"
#include "agent/engagement_check.h"
#include "agent/input_text.h"
#include "linkage/normalise.h"
#include "policy/fields.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {
constexpr size_t kMaxSubjectFieldBytes = 4096;

// The upsert may go ahead: every duplicate of the subject is named in
// merge_local_ids, and only duplicates are.
absl::Status CheckMerge(const accord::v1::UpsertSubjectRequest& request,
                        const std::vector<Duplicate>& duplicates) {
  const auto& merge = request.merge_local_ids();
  std::vector<Duplicate> unmerged;
  for (const auto& d : duplicates) {
    if (std::find(merge.begin(), merge.end(), d.local_id) == merge.end())
      unmerged.push_back(d);
  }
  if (!unmerged.empty()) {
    return DuplicateRefusal(
        "field subject", unmerged,
        "use the id already held, or name it in merge_local_ids to merge "
        "what it holds into this subject");
  }
  for (int i = 0; i < merge.size(); ++i) {
    const std::string& id = merge[i];
    const bool listed_before =
        std::find(merge.begin(), merge.begin() + i, id) != merge.begin() + i;
    if (id == request.subject().local_id() || listed_before) {
      return absl::InvalidArgumentError(
          absl::StrCat("field merge_local_ids[", i,
                       "]: names the subject itself or an id listed before"));
    }
    const bool duplicate =
        std::any_of(duplicates.begin(), duplicates.end(),
                    [&](const Duplicate& d) { return d.local_id == id; });
    if (!duplicate) {
      return absl::FailedPreconditionError(absl::StrCat(
          "field merge_local_ids[", i, "]: subject '", id,
          "' is not held here with this person's NHS number or name and "
          "date of birth; only a duplicate of her is merged"));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::vector<accord::v1::SubjectToken>> PrepareSubject(
    const linkage::LinkageKey& key, accord::v1::Subject* subject) {
  auto& fields = *subject->mutable_fields();
  for (const auto& [name, value] : fields) {
    if (policy::FindField(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not a field of the field catalogue"));
    }
    if (value.size() > kMaxSubjectFieldBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": longer than ", kMaxSubjectFieldBytes, " bytes"));
    }
  }
  auto get = [&](const char* name) -> std::optional<std::string> {
    auto it = fields.find(name);
    if (it == fields.end() || absl::StripAsciiWhitespace(it->second).empty()) {
      return std::nullopt;
    }
    return it->second;
  };
  linkage::IdentifierSet ids;
  ids.given_name = get("given_name");
  ids.family_name = get("family_name");
  ids.date_of_birth = get("date_of_birth");
  ids.postcode = get("postcode");
  ids.nhs_number = get("nhs_number");
  auto tokens = linkage::DeriveTokens(key, ids);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) {
    return absl::FailedPreconditionError(
        "given_name: no token can be derived; give given_name, family_name "
        "and date_of_birth, or nhs_number, or date_of_birth and postcode");
  }
  // DeriveTokens has validated these; store the canonical forms.
  if (ids.date_of_birth) {
    fields["date_of_birth"] =
        *linkage::NormaliseDateOfBirth(*ids.date_of_birth);
  }
  if (ids.postcode)
    fields["postcode"] = *linkage::NormalisePostcode(*ids.postcode);
  if (ids.nhs_number)
    fields["nhs_number"] = *linkage::NormaliseNhsNumber(*ids.nhs_number);
  return tokens;
}

LocalApi::LocalApi(std::string self_org, std::string partnership_id,
                   AgentStore* store, const linkage::LinkageKey* linkage_key,
                   const Clock* clock, const PartnershipDirectory* partnership)
    : self_org_(std::move(self_org)),
      partnership_id_(std::move(partnership_id)),
      store_(store),
      linkage_key_(linkage_key),
      clock_(clock),
      partnership_(partnership) {}

absl::Status LocalApi::Authorise(
    const absl::StatusOr<Principal>& caller) const {
  if (!caller.ok()) return caller.status();
  if (caller->kind != PrincipalKind::kOrg || caller->name != self_org_) {
    return absl::PermissionDeniedError(absl::StrCat(
        caller->uri, " may not use the local API of ", self_org_,
        "'s agent; only ",
        SpiffeId(partnership_id_, PrincipalKind::kOrg, self_org_), " may"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>> LocalApi::TokensFor(
    const accord::v1::Subject& subject) const {
  accord::v1::Subject copy = subject;
  auto tokens = PrepareSubject(*linkage_key_, &copy);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field subject.fields.", tokens.status().message()));
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<ImportSession>> LocalApi::StartImport(
    accord::v1::ImportFormat format) {
  ImportOptions options;
  options.partnership = partnership_;
  return ImportSession::Start(format, store_, linkage_key_, options);
}

absl::StatusOr<accord::v1::UpsertSubjectResponse> LocalApi::UpsertSubject(
    const accord::v1::UpsertSubjectRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  accord::v1::Subject subject = request.subject();
  auto tokens = PrepareSubject(*linkage_key_, &subject);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field subject.fields.", tokens.status().message()));
  }
  accord::v1::UpsertSubjectResponse response;
  auto s = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
    // One person, one local id: another id holding her strong identifiers
    // is refused, or merged into this one when the caller names it.
    auto duplicates = FindDuplicates(w, subject, *tokens);
    if (!duplicates.ok()) return duplicates.status();
    if (auto refused = CheckMerge(request, *duplicates); !refused.ok())
      return refused;
    auto created = w.UpsertSubject(subject, *tokens);
    if (!created.ok()) return created.status();
    response.set_created(*created);
    for (const auto& from : request.merge_local_ids()) {
      auto merged = w.MergeSubject(from, subject.local_id());
      if (!merged.ok()) return merged.status();
      response.add_merged_local_ids(from);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (auto& t : *tokens) *response.add_tokens() = std::move(t);
  return response;
}

absl::StatusOr<accord::v1::UpsertRecordResponse> LocalApi::UpsertRecord(
    const accord::v1::UpsertRecordRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  accord::v1::UpsertRecordResponse response;
  auto s = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
    auto created = w.UpsertRecord(request.record());
    if (!created.ok()) return created.status();
    response.set_created(*created);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<accord::v1::RecordConsentResponse> LocalApi::RecordConsent(
    const accord::v1::RecordConsentRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  const auto& c = request.consent();
  if (auto s = CheckConsentTerms(c, partnership_, kConsentRequestNames);
      !s.ok()) {
    return s;
  }
  accord::v1::RecordConsentResponse response;
  auto s = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
    auto id = w.RecordConsent(c);
    if (!id.ok()) return id.status();
    response.set_consent_id(*id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<accord::v1::WithdrawConsentResponse> LocalApi::WithdrawConsent(
    const accord::v1::WithdrawConsentRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  const absl::Time at = request.has_withdrawn_at()
                            ? FromProtoTime(request.withdrawn_at())
                            : clock_->Now();
  auto s = store_->Write([&](AgentStore::Writer& w) {
    return w.WithdrawConsent(request.consent_id(), at, request.recorded_by());
  });
  if (!s.ok()) return s;
  return accord::v1::WithdrawConsentResponse();
}

absl::StatusOr<accord::v1::ListConsentsResponse> LocalApi::ListConsents(
    const accord::v1::ListConsentsRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  auto consents = store_->Consents(request.subject_local_id());
  if (!consents.ok()) return consents.status();
  accord::v1::ListConsentsResponse response;
  for (auto& c : *consents) *response.add_consents() = std::move(c);
  return response;
}

absl::StatusOr<accord::v1::RecordEngagementResponse> LocalApi::RecordEngagement(
    const accord::v1::RecordEngagementRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  // The monitoring dataset's rules, as an import is held to them.
  if (auto s = CheckEngagement(request.engagement(), "engagement."); !s.ok()) {
    return s;
  }
  accord::v1::RecordEngagementResponse response;
  auto s = store_->Write([&](AgentStore::Writer& w) -> absl::Status {
    auto id = w.RecordEngagement(request.engagement());
    if (!id.ok()) return id.status();
    response.set_engagement_id(*id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<accord::v1::SubjectTokensResponse> LocalApi::SubjectTokens(
    const accord::v1::SubjectTokensRequest& request) {
  if (auto s = ValidateLocalRequest(request); !s.ok()) return s;
  auto tokens = store_->TokensOf(request.subject_local_id());
  if (!tokens.ok()) return tokens.status();
  accord::v1::SubjectTokensResponse response;
  for (auto& t : *tokens) *response.add_tokens() = std::move(t);
  return response;
}

}  // namespace accord::agent
