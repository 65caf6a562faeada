// Test and benchmark data for agent/: a small partnership and an agreement
// in text format, and the moment they are read at. Not part of the library.
#ifndef ACCORD_AGENT_TEST_DATA_H_
#define ACCORD_AGENT_TEST_DATA_H_

#include "absl/time/time.h"

namespace accord::agent::testing {

// 2026-03-15T10:00:00Z, inside the agreement's window.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1773568800); }

inline const char* kPartnershipText = R"pb(
  id: "test.accord"
  name: "Test partnership"
  organisations {
    id: "vol-a"
    name: "Alder Women's Centre"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "Ann Holder" role: "Coordinator" phone: "01632 960000" }
    services {
      id: "isva"
      name: "Sexual violence advisers"
      contact { name: "Isla Vance" role: "ISVA manager" phone: "01632 960001" }
    }
  }
  organisations {
    id: "vol-b"
    name: "Birch Refuge"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "b" }
  }
  organisations {
    id: "vol-c"
    name: "Cedar Law Centre"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "c" }
  }
  organisations {
    id: "police"
    name: "Test Police"
    kind: ORG_KIND_POLICE
    contact { name: "p" }
  }
  purposes { id: "support" description: "support" }
  purposes { id: "safeguarding" description: "safeguarding" }
)pb";

// vol-a holds. Voluntary partners may query it for support with consent;
// the police may learn involvement without consent, and ask for risk and
// minimised identity with consent or under a serious-harm clause.
inline const char* kAgreementText = R"pb(
  id: "test-isa"
  version: 1
  title: "Test agreement"
  parties: [ "vol-a", "vol-b", "vol-c", "police" ]
  valid_from { seconds: 1767225600 }
  valid_until { seconds: 1861920000 }
  rules {
    id: "support-query"
    requesters { kind: ORG_KIND_VOLUNTARY }
    action: ACTION_QUERY
    holders { org_id: "vol-a" }
    purposes: "support"
    lawful_basis: LAWFUL_BASIS_CONSENT
    consent_required: true
    release { field: "given_name" transform: TRANSFORM_KEEP }
    release { field: "family_name" transform: TRANSFORM_PSEUDONYMISE }
    release { field: "date_of_birth" transform: TRANSFORM_DATE_TO_YEAR }
    release { field: "postcode" transform: TRANSFORM_POSTCODE_TO_DISTRICT }
    release { field: "phone" transform: TRANSFORM_DROP }
    release { category: DATA_CATEGORY_NEEDS transform: TRANSFORM_KEEP }
    release {
      category: DATA_CATEGORY_CASE_SUMMARY
      transform: TRANSFORM_DATE_TO_YEAR
    }
  }
  rules {
    id: "police-involvement"
    requesters { org_id: "police" }
    action: ACTION_QUERY
    holders { org_id: "vol-a" }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    involvement_only: true
  }
  rules {
    id: "police-risk"
    requesters { org_id: "police" }
    action: ACTION_QUERY
    holders { org_id: "vol-a" }
    purposes: "safeguarding"
    lawful_basis: LAWFUL_BASIS_PUBLIC_TASK
    consent_required: true
    release { field: "family_name" transform: TRANSFORM_PSEUDONYMISE }
    release { field: "date_of_birth" transform: TRANSFORM_DATE_TO_AGE_BAND }
    release { category: DATA_CATEGORY_RISK transform: TRANSFORM_KEEP }
    no_consent {
      basis: NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM
      accepted_reasons: [ CONSENT_NOT_SOUGHT_REASON_WOULD_PREJUDICE_PROTECTION ]
      require_justification: true
      approver_role: "duty-inspector"
      flag_for_review: true
    }
  }
)pb";

}  // namespace accord::agent::testing

#endif  // ACCORD_AGENT_TEST_DATA_H_
