#include "runtime/test_pki.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace accord::testing {
namespace {

std::string Scripts() {
  const char* src = std::getenv("ACCORD_SOURCE_DIR");
  return absl::StrCat(src != nullptr ? src : ".", "/deploy/pki");
}

}  // namespace

int RunQuietly(const std::string& command) {
  const int rc = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string MakeTestPki(const std::string& prefix,
                        const std::string& partnership_id,
                        const std::vector<std::string>& orgs) {
  std::string tmpl = absl::StrCat("/tmp/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  std::string org_flags;
  for (const auto& org : orgs) absl::StrAppend(&org_flags, " --org ", org);
  if (RunQuietly(absl::StrCat(Scripts(), "/make-pki.sh --partnership-id ",
                              partnership_id, org_flags, " --out ", tmpl)) !=
          0 ||
      RunQuietly(absl::StrCat(Scripts(), "/make-test-certs.sh --out ", tmpl,
                              " --partnership-id ", partnership_id)) != 0) {
    RemoveTestPki(tmpl);
    return "";
  }
  return tmpl;
}

bool IssueTestCertificate(const std::string& dir, const std::string& name,
                          const std::string& subject, const std::string& san,
                          const std::string& eku) {
  return RunQuietly(absl::StrCat("bash -c 'source ", Scripts(),
                                 "/pki-lib.sh && pki_env ", dir,
                                 " && pki_issue ", dir, " ", name, " ",
                                 subject, " ", san, " ", eku, " 30'")) == 0;
}

bool RevokeTestCertificate(const std::string& dir, const std::string& name) {
  return RunQuietly(absl::StrCat(Scripts(), "/revoke.sh --out ", dir, " ", dir,
                                 "/", name, ".pem")) == 0;
}

void RemoveTestPki(const std::string& dir) {
  if (dir.empty()) return;
  (void)std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
}

}  // namespace accord::testing
