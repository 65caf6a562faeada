// What makes a consent record one that can apply. Every path that records
// consent (the local API's RecordConsent, bulk import) checks it here, so a
// misspelt organisation or purpose is refused with the valid values rather
// than stored as a consent that can never apply.
//
// A consent names at least one recipient: organisations of the partnership
// (granted_to_orgs) and/or kinds of organisation; at least one purpose of
// the partnership; at least one data category; when it was given, how, and
// who recorded it; an expiry, if any, after it was given; and it is not
// already withdrawn (a withdrawal is recorded as its own event afterwards).
//
// Pure functions; thread-safe.
#ifndef ACCORD_AGENT_CONSENT_TERMS_H_
#define ACCORD_AGENT_CONSENT_TERMS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "accord/v1/records.pb.h"
#include "runtime/partnership.h"

namespace accord::agent {

// How the caller's user knows the parts of a consent: request fields or
// import columns. Messages start with the name ("field
// consent.granted_to_orgs[1]: ..." or "consent_to_orgs: ...").
struct ConsentPartNames {
  absl::string_view orgs;
  absl::string_view kinds;
  absl::string_view purposes;
  absl::string_view categories;
  absl::string_view given;
  absl::string_view method;
  absl::string_view recorded_by;
  absl::string_view expires;
  absl::string_view withdrawn;
  // Whether a list item is named by its index ("[1]"): request fields are
  // lists, an import cell holds the whole list.
  bool indexed;
};

// The local API's names (RecordConsentRequest.consent).
extern const ConsentPartNames kConsentRequestNames;
// An import file's columns (docs/AGENT.md).
extern const ConsentPartNames kConsentImportNames;

// InvalidArgument naming the first part at fault, with the valid values (and
// the nearest one, for a misspelling) where there is a list of them. Never
// quotes what the caller wrote. Organisations and purposes are checked
// against `partnership` when it is given.
[[nodiscard]] absl::Status CheckConsentTerms(
    const accord::v1::ConsentRecord& consent,
    const PartnershipDirectory* partnership, const ConsentPartNames& names);

}  // namespace accord::agent

#endif  // ACCORD_AGENT_CONSENT_TERMS_H_
