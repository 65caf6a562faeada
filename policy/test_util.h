// Test-only helpers for policy/ tests: a small partnership and agreement
// builders. Not part of the library.
#ifndef ACCORD_POLICY_TEST_UTIL_H_
#define ACCORD_POLICY_TEST_UTIL_H_

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "policy/policy.h"

namespace accord::policy::testing {

// 2026-03-15T10:00:00Z, inside the test agreements' window.
inline absl::Time InWindow() { return absl::FromUnixSeconds(1773568800); }
inline absl::Time WindowStart() { return absl::FromUnixSeconds(1767225600); }
inline absl::Time WindowEnd() { return absl::FromUnixSeconds(1861920000); }

inline const char* kPartnership = R"pb(
  id: "test.accord"
  name: "Test partnership"
  organisations {
    id: "vol-a"
    name: "A"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "a" }
  }
  organisations {
    id: "vol-b"
    name: "B"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "b" }
  }
  organisations {
    id: "vol-c"
    name: "C"
    kind: ORG_KIND_VOLUNTARY
    contact { name: "c" }
  }
  organisations {
    id: "police"
    name: "P"
    kind: ORG_KIND_POLICE
    contact { name: "p" }
  }
  organisations {
    id: "council"
    name: "K"
    kind: ORG_KIND_COUNCIL
    contact { name: "k" }
  }
  organisations {
    id: "health"
    name: "H"
    kind: ORG_KIND_HEALTH
    contact { name: "h" }
  }
  purposes { id: "safeguarding" description: "s" }
  purposes { id: "support" description: "s" }
  purposes { id: "monitoring" description: "m" }
)pb";

// An agreement whose first rule starts on line 9 and whose rule body starts
// on line 10 (so a body's k-th line, from 0, is line 10 + k).
inline std::string AgreementText(
    const std::string& id, const std::string& rule_body,
    const std::string& parties = R"("vol-a", "vol-b", "police")",
    const std::string& more_rules = "") {
  return absl::StrCat("id: \"", id, "\"\n",                     // 1
                      "version: 3\n",                           // 2
                      "title: \"Test agreement\"\n",            // 3
                      "parties: [", parties, "]\n",             // 4
                      "valid_from { seconds: 1767225600 }\n",   // 5
                      "valid_until { seconds: 1861920000 }\n",  // 6
                      "review_by { seconds: 1814313600 }\n",    // 7
                      "rules {\n",                              // 8
                      "  id: \"r1\"\n",                         // 9
                      rule_body, "}\n", more_rules);
}

// A valid rule body: vol-a and vol-b QUERY each other for support, with
// consent, releasing given_name, date_of_birth (year) and NEEDS.
inline const char* kSupportRule =
    "  requesters { kind: ORG_KIND_VOLUNTARY }\n"
    "  action: ACTION_QUERY\n"
    "  holders { kind: ORG_KIND_VOLUNTARY }\n"
    "  purposes: \"support\"\n"
    "  lawful_basis: LAWFUL_BASIS_CONSENT\n"
    "  consent_required: true\n"
    "  release { field: \"given_name\" transform: TRANSFORM_KEEP }\n"
    "  release { field: \"date_of_birth\" transform: TRANSFORM_DATE_TO_YEAR }\n"
    "  release { category: DATA_CATEGORY_NEEDS transform: TRANSFORM_KEEP }\n";

inline absl::StatusOr<std::shared_ptr<const PolicySet>> CompileOne(
    const std::string& text, const std::string& name = "a.textproto") {
  return PolicySet::Compile({"partnership.textproto", kPartnership},
                            {{name, text}});
}

inline std::string SourceDir() {
  const char* dir = std::getenv("ACCORD_SOURCE_DIR");
  return dir ? dir : ".";
}

inline std::vector<std::string> ExampleAgreements() {
  const std::string d = SourceDir() + "/deploy/examples/agreements/";
  return {d + "childrens-mash.textproto", d + "monitoring.textproto",
          d + "police-dasv.textproto", d + "referral-pathways.textproto",
          d + "support-coordination.textproto"};
}
inline std::string ExamplePartnership() {
  return SourceDir() + "/deploy/examples/partnership.textproto";
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

}  // namespace accord::policy::testing

#endif  // ACCORD_POLICY_TEST_UTIL_H_
