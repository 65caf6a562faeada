#include "agent/disclosure.h"

#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "policy/fields.h"
#include "policy/minimise.h"

namespace accord::agent {
namespace {

using accord::v1::DataCategory;
using accord::v1::DiscloseResponse;

DiscloseResponse Refused(std::string detail) {
  DiscloseResponse r;
  r.set_status(accord::v1::HOLDER_STATUS_REFUSED);
  r.set_detail(std::move(detail));
  return r;
}

void Withhold(DiscloseResponse* r, std::string what, std::string reason) {
  auto* w = r->add_withheld();
  w->set_what(std::move(what));
  w->set_reason(std::move(reason));
}

// What a read left out because it did not read back (store.h, SkippedRow),
// said without content: "" when nothing was.
std::string SkippedNote(const std::vector<SkippedRow>& skipped) {
  if (skipped.empty()) return "";
  std::map<std::string, int> count;
  for (const auto& row : skipped) ++count[row.table];
  std::vector<std::string> parts;
  for (const auto& [table, n] : count) {
    parts.push_back(
        absl::StrCat(n, " stored row", n == 1 ? "" : "s", " of ", table));
  }
  return absl::StrCat(
      "this holder could not read back ", absl::StrJoin(parts, ", "),
      " for this person and left them out (logged at the holder)");
}

std::string WithNote(std::string detail, const std::string& note) {
  if (!note.empty()) absl::StrAppend(&detail, "; ", note);
  return detail;
}

std::string DecisionName(const accord::v1::Decision& d) {
  return absl::StrCat("agreement ", d.agreement_id(), " v",
                      d.agreement_version(), " rule ", d.rule_id());
}

// Strength of a token kind for matching: a stronger kind decides.
int Strength(accord::v1::TokenKind k) {
  switch (k) {
    case accord::v1::TOKEN_KIND_NHS_NUMBER:
      return 3;
    case accord::v1::TOKEN_KIND_NAME_DOB:
      return 2;
    case accord::v1::TOKEN_KIND_DOB_POSTCODE:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

Discloser::Discloser(std::string self_org,
                     std::shared_ptr<const PartnershipDirectory> partnership,
                     AgentStore* store, const policy::Engine* policy,
                     std::string pseudonym_key, const Clock* clock)
    : self_org_(std::move(self_org)),
      partnership_(std::move(partnership)),
      store_(store),
      policy_(policy),
      pseudonym_key_(std::move(pseudonym_key)),
      clock_(clock) {}

bool Discloser::ConsentCovers(const accord::v1::ConsentRecord& consent,
                              const accord::v1::Organisation& requester,
                              const std::string& purpose, DataCategory category,
                              absl::Time now) {
  if (FromProtoTime(consent.given_at()) > now) return false;
  if (consent.has_withdrawn_at() &&
      FromProtoTime(consent.withdrawn_at()) <= now)
    return false;
  if (consent.has_expires_at() && FromProtoTime(consent.expires_at()) <= now)
    return false;
  bool to_requester = false;
  for (const auto& o : consent.granted_to_orgs())
    to_requester |= o == requester.id();
  for (int k : consent.granted_to_kinds())
    to_requester |= k == requester.kind();
  if (!to_requester) return false;
  bool for_purpose = false;
  for (const auto& p : consent.purposes()) for_purpose |= p == purpose;
  if (!for_purpose) return false;
  for (int c : consent.categories()) {
    if (c == category) return true;
  }
  return false;
}

absl::StatusOr<int64_t> Discloser::Match(
    AgentStore::Snapshot& snap,
    const accord::v1::DiscloseRequest& request) const {
  // Use the strongest kind of token supplied; several subjects behind it is
  // ambiguous and releases nothing.
  int best = 0;
  for (const auto& t : request.subjects())
    best = std::max(best, Strength(t.kind()));
  std::set<int64_t> ids;
  for (const auto& t : request.subjects()) {
    if (Strength(t.kind()) != best) continue;
    auto found = snap.FindByToken(t);
    if (!found.ok()) return found.status();
    ids.insert(found->begin(), found->end());
  }
  if (ids.empty())
    return absl::NotFoundError("no subject matches these tokens");
  if (ids.size() > 1) {
    return absl::FailedPreconditionError(
        "these tokens match more than one person here; supply a stronger "
        "identifier "
        "(name and date of birth, or NHS number)");
  }
  return *ids.begin();
}

DiscloseResponse Discloser::Disclose(
    const accord::v1::DiscloseRequest& request,
    std::vector<std::string>* record_ids) const {
  const absl::Time now = clock_->Now();
  const auto* requester = partnership_->FindOrg(request.requester_org());
  if (requester == nullptr) {
    return Refused(absl::StrCat("requester '", request.requester_org(),
                                "' is not a member of this partnership"));
  }

  // Defence in depth: this holder's own copy of the agreements must agree.
  accord::v1::DecisionRequest dreq;
  dreq.set_requester_org(request.requester_org());
  dreq.set_holder_org(self_org_);
  dreq.set_action(accord::v1::ACTION_QUERY);
  dreq.set_purpose(request.purpose());
  *dreq.mutable_fields() = request.fields();
  *dreq.mutable_categories() = request.categories();
  dreq.set_involvement_only(request.mode() ==
                            accord::v1::QUERY_MODE_INVOLVEMENT);
  if (request.has_no_consent())
    *dreq.mutable_no_consent() = request.no_consent();
  *dreq.mutable_at() = ToProtoTime(now);
  const accord::v1::Decision mine = policy_->DecideProto(dreq);
  if (mine.verdict() != accord::v1::VERDICT_ALLOW) {
    return Refused(
        absl::StrCat("this holder's copy of the agreements does not allow it: ",
                     mine.explanation()));
  }
  if (!policy::SameDecision(mine, request.decision())) {
    return Refused(absl::StrCat(
        "the gateway's decision (", DecisionName(request.decision()),
        ") differs from this holder's (", DecisionName(mine), ")"));
  }

  // A holder never sets consent aside on the agreement's word alone: the
  // request must carry the written justification and the named approver it
  // will be audited with, whatever the clause itself demands.
  if (mine.consent() == accord::v1::CONSENT_REQUIREMENT_SET_ASIDE) {
    if (request.no_consent().justification().empty()) {
      return Refused(
          "consent is set aside but the request carries no written "
          "justification (no_consent.justification)");
    }
    if (request.no_consent().approver().user_id().empty()) {
      return Refused(
          "consent is set aside but the request names no approver "
          "(no_consent.approver)");
    }
  }

  // Everything about the person is read in one snapshot: her consent and
  // her records as of the same instant.
  const bool consent_needed =
      mine.consent() == accord::v1::CONSENT_REQUIREMENT_REQUIRED;
  const bool involvement = request.mode() == accord::v1::QUERY_MODE_INVOLVEMENT;
  absl::Status matched;
  std::vector<accord::v1::ConsentRecord> consents;
  std::vector<accord::v1::Engagement> engagements;
  SubjectView subject;
  // Rows that do not read back are left out, and said so below.
  std::vector<SkippedRow> skipped;
  auto read = store_->Read([&](AgentStore::Snapshot& snap) -> absl::Status {
    auto id = Match(snap, request);
    if (!id.ok()) {
      matched = id.status();
      return absl::OkStatus();
    }
    if (consent_needed) {
      auto c = snap.ConsentsOf(*id, &skipped);
      if (!c.ok()) return c.status();
      consents = std::move(*c);
    }
    if (involvement) {
      auto e = snap.EngagementsOf(*id, &skipped);
      if (!e.ok()) return e.status();
      engagements = std::move(*e);
    } else {
      auto v = snap.LoadSubject(*id, /*with_records=*/true);
      if (!v.ok()) return v.status();
      subject = std::move(*v);
      skipped.insert(skipped.end(), subject.skipped.begin(),
                     subject.skipped.end());
    }
    return absl::OkStatus();
  });
  if (!read.ok()) return Refused("this holder's store could not be read");
  if (!matched.ok()) {
    if (matched.code() == absl::StatusCode::kNotFound) {
      DiscloseResponse r;
      r.set_status(accord::v1::HOLDER_STATUS_NO_MATCH);
      return r;
    }
    return Refused(std::string(matched.message()));
  }

  auto covered = [&](DataCategory category) {
    if (!consent_needed) return true;
    for (const auto& c : consents) {
      if (ConsentCovers(c, *requester, request.purpose(), category, now))
        return true;
    }
    return false;
  };

  DiscloseResponse response;
  response.set_consent_set_aside(mine.consent() ==
                                 accord::v1::CONSENT_REQUIREMENT_SET_ASIDE);
  const std::string skipped_note = SkippedNote(skipped);
  response.set_detail(skipped_note);

  if (involvement) {
    if (!covered(accord::v1::DATA_CATEGORY_ENGAGEMENT)) {
      return Refused(WithNote(
          absl::StrCat("the person has not consented to ", requester->id(),
                       " learning of this service's involvement for '",
                       request.purpose(), "'"),
          skipped_note));
    }
    const auto* self = partnership_->FindOrg(self_org_);
    for (const auto& e : engagements) {
      if (e.has_ended_at() && FromProtoTime(e.ended_at()) <= now) continue;
      auto* inv = response.add_involvement();
      const auto* service = partnership_->FindService(self_org_, e.service());
      inv->set_service(service ? service->name() : e.service());
      *inv->mutable_since() = e.started_at();
      const accord::v1::PointOfContact* poc =
          service && service->has_contact()
              ? &service->contact()
              : (self ? &self->contact() : nullptr);
      if (poc) {
        inv->set_contact_name(poc->name());
        inv->set_contact_role(poc->role());
        inv->set_contact_phone(poc->phone());
        inv->set_contact_email(poc->email());
      }
    }
    if (response.involvement_size() == 0 && self != nullptr) {
      auto* inv = response.add_involvement();
      inv->set_contact_name(self->contact().name());
      inv->set_contact_role(self->contact().role());
      inv->set_contact_phone(self->contact().phone());
      inv->set_contact_email(self->contact().email());
    }
    response.set_status(accord::v1::HOLDER_STATUS_ANSWERED);
    return response;
  }

  const SubjectView* view = &subject;
  if (consent_needed) {
    // Some consent must be current and given to this requester for this
    // purpose; which categories it covers is then checked item by item.
    bool any = false;
    for (const auto& c : consents) {
      for (int category : c.categories()) {
        any |= ConsentCovers(c, *requester, request.purpose(),
                             static_cast<DataCategory>(category), now);
      }
    }
    if (!any) {
      return Refused(WithNote(
          absl::StrCat("the person has no current consent here to ",
                       requester->id(), " for '", request.purpose(),
                       "' (none given, withdrawn, expired, or given to another "
                       "organisation or for another purpose)"),
          skipped_note));
    }
  }

  const policy::MinimiseContext mctx{now, request.requester_org(),
                                     pseudonym_key_};
  const std::string rule = DecisionName(mine);
  std::set<std::string> planned_fields;
  std::set<int> planned_categories;
  const std::set<std::string> asked_fields(request.fields().begin(),
                                           request.fields().end());
  const std::set<int> asked_categories(request.categories().begin(),
                                       request.categories().end());
  bool fields_skipped = false;
  std::map<int, int> skipped_records;  // by category
  for (const auto& row : skipped) {
    fields_skipped |= row.table == "subjects";
    if (row.table == "records") ++skipped_records[row.category];
  }
  for (const auto& release : mine.plan().releases()) {
    if (release.has_field()) {
      const std::string& name = release.field();
      planned_fields.insert(name);
      const policy::FieldSpec* spec = policy::FindField(name);
      if (release.transform() == accord::v1::TRANSFORM_DROP) {
        if (asked_fields.count(name))
          Withhold(&response, name, absl::StrCat("dropped by ", rule));
        continue;
      }
      auto it = view->subject.fields().find(name);
      if (spec == nullptr || it == view->subject.fields().end() ||
          it->second.empty()) {
        if (fields_skipped && asked_fields.count(name)) {
          Withhold(&response, name,
                   "this holder could not read back the person's stored "
                   "fields");
        }
        continue;
      }
      if (!covered(spec->category)) {
        Withhold(&response, name,
                 absl::StrCat("no current consent covers ",
                              accord::v1::DataCategory_Name(spec->category)));
        continue;
      }
      auto out =
          policy::ApplyTransform(release.transform(), *spec, it->second, mctx);
      if (!out.ok()) {
        Withhold(&response, name, std::string(out.status().message()));
        continue;
      }
      (*response.mutable_fields())[name] = std::move(*out);
    } else {
      const DataCategory category = release.category();
      planned_categories.insert(category);
      if (release.transform() == accord::v1::TRANSFORM_DROP) {
        if (asked_categories.count(category)) {
          Withhold(&response, accord::v1::DataCategory_Name(category),
                   absl::StrCat("dropped by ", rule));
        }
        continue;
      }
      if (!covered(category)) {
        Withhold(&response, accord::v1::DataCategory_Name(category),
                 "no current consent covers this category");
        continue;
      }
      if (const int n = skipped_records[category]; n > 0) {
        Withhold(&response, accord::v1::DataCategory_Name(category),
                 absl::StrCat(n, " stored record", n == 1 ? "" : "s",
                              " of this category could not be read back here "
                              "and ",
                              n == 1 ? "was" : "were", " left out"));
      }
      for (const auto& rec : view->records) {
        if (rec.category() != category) continue;
        auto* d = response.add_records();
        if (record_ids != nullptr) record_ids->push_back(rec.local_id());
        auto ref = policy::Pseudonym(rec.local_id(), mctx);
        d->set_ref(ref);
        d->set_category(category);
        d->set_provenance(rec.provenance());
        d->set_service(rec.service());
        d->set_author_role(rec.author_role());
        d->set_text(rec.text());
        if (rec.has_recorded_at()) {
          const absl::CivilDay day = absl::ToCivilDay(
              FromProtoTime(rec.recorded_at()), absl::UTCTimeZone());
          d->set_recorded(release.transform() ==
                                  accord::v1::TRANSFORM_DATE_TO_YEAR
                              ? absl::StrCat(day.year())
                              : absl::FormatCivilTime(day));
        }
      }
    }
  }
  for (const auto& f : request.fields()) {
    if (!planned_fields.count(f))
      Withhold(&response, f, absl::StrCat("not released by ", rule));
  }
  for (int c : request.categories()) {
    if (!planned_categories.count(c)) {
      Withhold(&response,
               accord::v1::DataCategory_Name(static_cast<DataCategory>(c)),
               absl::StrCat("not released by ", rule));
    }
  }
  response.set_status(accord::v1::HOLDER_STATUS_ANSWERED);
  return response;
}

}  // namespace accord::agent
