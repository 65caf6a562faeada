// Holding a holder's answer to the decision's plan: the gateway's second look
// at what leaves a partner.
//
// A holder's agent minimises what it releases, but the gateway cannot take
// that on trust: an agent may be misconfigured, out of date or lying. Before
// anything reaches the requester the gateway checks every item of the answer
// against the field plan of the decision that governed it and drops
//  - a subject field or record category the plan does not release;
//  - a value not in the planned shape (a full date of birth where an age band
//    or a year was planned, a full postcode where a district was, anything
//    but a pseudonym where a pseudonym was);
//  - a record whose reference is not a pseudonym or whose date is not in the
//    planned form;
//  - in an involvement-only answer, any field or record; in a records answer,
//    any involvement; an involvement entry whose service or point of contact
//    is not the one the partnership file gives for that holder;
//  - withheld notes that do not name a field or category.
// What was dropped is reported by name (never by value) so that the gateway
// can tell the requester it was withheld and audit the holder as
// over-sharing.
//
// Pure; thread-safe.
#ifndef ACCORD_POLICY_ANSWER_CHECK_H_
#define ACCORD_POLICY_ANSWER_CHECK_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/config.pb.h"
#include "policy/policy.h"

namespace accord::policy {

// Removes from `answer` everything the allowed `decision` does not release
// to the requester, and returns what was removed: field names,
// "record:<CATEGORY>" (once per category), "involvement", "withheld".
// Empty when the answer kept to the plan. `holder` is the organisation that
// answered, as the partnership file describes it.
std::vector<std::string> HoldToPlan(const Decision& decision,
                                    const accord::v1::Organisation& holder,
                                    accord::v1::DiscloseResponse* answer);

// Whether `value` has the shape `transform` gives a field of `kind`.
bool HasPlannedShape(accord::v1::Transform transform, ValueKind kind,
                     absl::string_view value);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_ANSWER_CHECK_H_
