// The gateway's and the agent's settings: their configuration files
// (proto/accord/v1/config.proto) read and checked once at start-up, before
// anything listens, and turned into typed values that the programs use as
// they are.
//
// Every address, port, duration, count and size is checked against its
// allowed range (documented beside each field in config.proto); an error
// names file:line:column, the field, the value and the range. The TLS files
// are checked as the process will use them: the private key must be the
// certificate's, the certificate must carry exactly the identity the process
// holds (spiffe://<p>/gateway; spiffe://<p>/agent/<org_id>), and a CRL file
// must exist unless the configuration says `allow_no_crl: true`. Relative
// paths are resolved against the directory of the file that names them.
//
// Pure functions of the files they read; thread-safe.
#ifndef ACCORD_RUNTIME_SETTINGS_H_
#define ACCORD_RUNTIME_SETTINGS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/config.pb.h"
#include "runtime/partnership.h"

namespace accord {

struct GatewaySettings {
  std::shared_ptr<const PartnershipDirectory> partnership;
  std::string partnership_file;
  std::vector<std::string> agreement_files;
  std::string listen_address;
  // Resolved; crl_file is empty only when allow_no_crl is set.
  accord::v1::TlsFiles tls;
  std::string audit_db;
  std::string audit_signing_key_file;
  // Absent: the audit log's defaults.
  std::optional<absl::Duration> group_commit_max_delay;
  std::optional<uint32_t> group_commit_max_batch;
  // Absent: the gateway's default.
  std::optional<absl::Duration> holder_deadline;
  std::string referral_db;  // default state/gateway-referrals.db
  // Each limit checked; a field left out is 0 (no such limit).
  accord::v1::RateLimit rate_limit;
  std::optional<absl::Duration> referral_initial_backoff;
  std::optional<absl::Duration> referral_max_backoff;
  // Each field checked; a field left out is 0 (the refusal log's default).
  accord::v1::RefusalAudit refusal_audit;
  // Absent: the gateway's default floor (256 MiB); 0 turns the check off.
  std::optional<uint64_t> min_free_disk_mb;
  uint32_t max_concurrent_exports = 0;  // 0: the default (2)
  // Checked by ServerLimits::FromProto (runtime/server_limits.h).
  accord::v1::ServerLimits server_limits;
};

struct AgentSettings {
  std::string org_id;
  std::shared_ptr<const PartnershipDirectory> partnership;
  std::string partnership_file;
  std::vector<std::string> agreement_files;
  std::string holder_listen_address;
  std::string local_listen_address;
  // Resolved; crl_file is empty only when allow_no_crl is set.
  accord::v1::TlsFiles tls;
  std::string store_db;
  // The agent's own audit log and the key that signs its tree heads.
  std::string audit_db;
  std::string audit_signing_key_file;
  std::string linkage_key_file;
  std::string pseudonym_key_file;
  std::string gateway_address;    // empty: no gateway configured
  std::string referral_key_file;  // empty: none
  // Checked by ServerLimits::FromProto (runtime/server_limits.h).
  accord::v1::ServerLimits server_limits;
};

// Reads and checks the gateway's configuration file and the partnership
// file it names. InvalidArgument (or the file error) naming what is wrong.
absl::StatusOr<GatewaySettings> LoadGatewaySettings(
    const std::string& config_file);

// The same for an agent's configuration: org_id must be an organisation of
// the partnership, and the agent's certificate must be that organisation's
// agent certificate.
absl::StatusOr<AgentSettings> LoadAgentSettings(const std::string& config_file);

// Resolves the paths of `files` against the directory of the
// configuration file that names them.
accord::v1::TlsFiles ResolveTlsFiles(const std::string& config_file,
                                     accord::v1::TlsFiles files);

// Checks `address` ("host:port", host a name, an IPv4 address or a
// bracketed IPv6 address) with a port from `min_port` to 65535. The error
// starts with `where` (e.g. "agent.textproto:4:1: field
// holder_listen_address") and quotes the address.
absl::Status CheckHostPort(absl::string_view address, int min_port,
                           absl::string_view where);

}  // namespace accord

#endif  // ACCORD_RUNTIME_SETTINGS_H_
