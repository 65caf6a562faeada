// libFuzzer target: parse, validate and compile one agreement file against
// the example partnership, then decide, explain and lint with whatever loads.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "policy/policy.h"
#include "runtime/crypto.h"

namespace {

const accord::policy::PolicySet::Source& Partnership() {
  static const auto* source = [] {
    auto* s = new accord::policy::PolicySet::Source;
    s->name = ACCORD_SOURCE_DIR "/deploy/examples/partnership.textproto";
    auto text = accord::ReadFile(s->name);
    if (text.ok()) s->text = *text;
    return s;
  }();
  return *source;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto policy = accord::policy::PolicySet::Compile(Partnership(),
                                                   {{"fuzz.textproto", text}});
  if (!policy.ok()) return 0;
  const absl::Time at = absl::FromUnixSeconds(1773568800);
  static const char* const kOrgs[] = {"police", "refuge", "rape-crisis",
                                      "childrens-services", "womens-centre"};
  static const char* const kPurposes[] = {"safeguarding",
                                          "support-coordination", "referral"};
  accord::policy::NoConsentAssertion assertion;
  assertion.basis = accord::v1::NO_CONSENT_BASIS_RISK_OF_SERIOUS_HARM;
  assertion.reason =
      accord::v1::CONSENT_NOT_SOUGHT_REASON_WOULD_PREJUDICE_PROTECTION;
  assertion.has_justification = true;
  for (const char* requester : kOrgs) {
    for (const char* holder : kOrgs) {
      for (int action = 1; action <= 3; ++action) {
        for (const char* purpose : kPurposes) {
          accord::policy::Request q;
          q.requester_org = requester;
          q.holder_org = holder;
          q.action = static_cast<accord::v1::Action>(action);
          q.purpose = purpose;
          q.at = at;
          q.involvement_only = (size & 1) != 0;
          if (size & 2) q.no_consent = &assertion;
          if (size & 4) q.AskField("date_of_birth");
          (void)(*policy)->Decide(q).ToProto();
        }
      }
    }
  }
  accord::policy::Request q;
  q.requester_org = "police";
  q.holder_org = "refuge";
  q.action = accord::v1::ACTION_QUERY;
  q.purpose = "safeguarding";
  q.at = at;
  (void)(*policy)->Explain(q);
  (void)(*policy)->Warnings(at);
  (void)(*policy)->Register(at, true);
  (void)(*policy)->CandidateHolders("police", accord::v1::ACTION_QUERY,
                                    "safeguarding", at);
  return 0;
}
