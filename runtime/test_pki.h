// A real partnership PKI for the runtime's tests and benchmarks, made by the
// scripts operators use (deploy/pki) in a temporary directory. The scripts
// are found through ACCORD_SOURCE_DIR (set by ctest), else the current
// directory. Not thread-safe; call from a test's set-up.
#ifndef ACCORD_RUNTIME_TEST_PKI_H_
#define ACCORD_RUNTIME_TEST_PKI_H_

#include <string>
#include <vector>

namespace accord::testing {

// Runs a shell command with its output discarded; its exit status.
int RunQuietly(const std::string& command);

// make-pki.sh for partnership `partnership_id` and `orgs`, then
// make-test-certs.sh (the certificates that must be refused), in a new
// directory /tmp/<prefix>-XXXXXX. The directory, or "" when a script failed.
std::string MakeTestPki(const std::string& prefix,
                        const std::string& partnership_id,
                        const std::vector<std::string>& orgs);

// Issues DIR/<name>.pem and .key from the PKI's CA (pki_issue) with
// `subject`, the SAN list `san` (e.g. "URI:spiffe://t.accord/agent/refuge")
// and the extended key usages `eku`, valid 30 days. True on success.
bool IssueTestCertificate(const std::string& dir, const std::string& name,
                          const std::string& subject, const std::string& san,
                          const std::string& eku);
// Revokes DIR/<name>.pem and re-signs DIR/crl.pem (revoke.sh).
bool RevokeTestCertificate(const std::string& dir, const std::string& name);

// Removes a directory MakeTestPki made.
void RemoveTestPki(const std::string& dir);

}  // namespace accord::testing

#endif  // ACCORD_RUNTIME_TEST_PKI_H_
