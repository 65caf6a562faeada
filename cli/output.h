// How accordctl shows things to people: readable answers, audit entries,
// errors, and JSON for scripts.
#ifndef ACCORD_CLI_OUTPUT_H_
#define ACCORD_CLI_OUTPUT_H_

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "accord/v1/audit.pb.h"
#include "accord/v1/common.pb.h"
#include "accord/v1/gateway.pb.h"
#include "audit/printable.h"

namespace accord::cli {

// Everything shown to a person that came from a server, a file or another
// party goes through these first (audit/printable.h): control characters
// become visible escapes, so nothing printed can move the cursor, erase a
// line or forge the lines around it. --json output is JSON-escaped instead.
using audit::Printable;
using audit::PrintableBlock;

// Both print the status message escaped: servers' messages may quote what a
// caller sent.
int UsageError(std::ostream& err, const absl::Status& status,
               const char* usage);
int Failure(std::ostream& err, const absl::Status& status);

void PrintJson(std::ostream& out, const google::protobuf::Message& msg);
void PrintQueryResponse(std::ostream& out,
                        const accord::v1::QueryResponse& response);
void PrintAuditEntry(std::ostream& out, const accord::v1::AuditEntry& entry);

std::string FormatDate(const google::protobuf::Timestamp& ts);
std::string FormatTime(const google::protobuf::Timestamp& ts);
// "name-dob:<hex>", the form --token accepts.
std::string TokenFlag(const accord::v1::SubjectToken& token);
// An enum value's name without its type prefix, lower-case:
// "HOLDER_STATUS_NO_MATCH" -> "no match".
std::string Readable(const std::string& enum_name, const std::string& prefix);

}  // namespace accord::cli

#endif  // ACCORD_CLI_OUTPUT_H_
