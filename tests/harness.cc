#include "tests/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/crypto.h"
#include "runtime/identity.h"
#include "runtime/textproto.h"
#include "runtime/tls.h"

extern char** environ;

namespace accord::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFile(const std::string& path, const std::string& content,
                       mode_t mode = 0644) {
  {
    std::ofstream out(path, std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
    out << content;
  }
  chmod(path.c_str(), mode);
  return absl::OkStatus();
}

std::string PrintText(const google::protobuf::Message& msg) {
  std::string out;
  google::protobuf::TextFormat::PrintToString(msg, &out);
  return out;
}

const char* kOrgs[] = {"womens-centre",     "rape-crisis", "refuge",
                       "law-centre",        "employment",  "police",
                       "childrens-services"};

}  // namespace

void PrepareCall(grpc::ClientContext* ctx, int seconds, const std::string& user,
                 const std::string& role) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(seconds));
  ctx->AddMetadata("x-accord-user", user);
  ctx->AddMetadata("x-accord-role", role);
}

std::string SourceDir() {
  const char* s = std::getenv("ACCORD_SOURCE_DIR");
  return s ? s : ACCORD_SOURCE_DIR_DEFAULT;
}

std::string BinDir() { return ACCORD_BIN_DIR; }

// A port the kernel reports free, never one this process handed out before:
// the kernel may offer a port again as soon as its probe socket is closed,
// and a partnership asks for 15 in a row.
int FreePort() {
  static absl::Mutex mu(absl::kConstInit);
  static auto* given = new std::set<int>;
  absl::MutexLock l(&mu);
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    close(fd);
    if (port != 0 && given->insert(port).second) return port;
  }
}

int RunCommand(const std::string& command, const std::string& log) {
  const std::string full = absl::StrCat(command, " >>", log, " 2>&1");
  const int rc = std::system(full.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// ---------------------------------------------------------------------------
// Process

Process::Process(std::string name, std::vector<std::string> argv,
                 std::string log_path)
    : name_(std::move(name)),
      argv_(std::move(argv)),
      log_path_(std::move(log_path)) {}

Process::~Process() { Stop(); }

absl::Status Process::Start() {
  exit_status_.reset();
  // A restarted process appends to the same log: only what it writes counts.
  log_offset_ = ReadAll(log_path_).size();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc =
      posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return absl::InternalError(absl::StrCat("cannot start ", argv_[0]));
  }
  return absl::OkStatus();
}

bool Process::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    exit_status_ =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<int> Process::WaitForExit(int timeout_ms) {
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Running()) {
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_status_;
}

absl::Status Process::WaitForLog(const std::string& needle, int timeout_ms) {
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    const std::string log = Log();
    if (log.size() > log_offset_ &&
        absl::StrContains(absl::string_view(log).substr(log_offset_), needle))
      return absl::OkStatus();
    if (!Running()) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, " exited before '", needle, "':\n", Log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(name_, ": no '", needle, "' in:\n", Log()));
}

void Process::Stop() {
  if (!Running()) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (!Running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
}

void Process::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void Process::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::string Process::Log() const { return ReadAll(log_path_); }

// ---------------------------------------------------------------------------
// TestPartnership

absl::StatusOr<std::unique_ptr<TestPartnership>> TestPartnership::Create(
    std::function<void(accord::v1::GatewayConfig*)> edit_gateway) {
  std::unique_ptr<TestPartnership> p(new TestPartnership);
  if (auto s = p->Prepare(edit_gateway); !s.ok()) return s;
  return p;
}

TestPartnership::~TestPartnership() {
  gateway_.reset();
  agents_.clear();
  if (!dir_.empty() && std::getenv("ACCORD_KEEP_TEST_DIR") == nullptr) {
    (void)std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
  }
}

absl::Status TestPartnership::Prepare(
    const std::function<void(accord::v1::GatewayConfig*)>& edit_gateway) {
  char tmpl[] = "/tmp/accord-it-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  dir_ = tmpl;
  const std::string src = SourceDir() + "/deploy/examples";
  for (const char* sub : {"/state", "/keys", "/logs"})
    mkdir((dir_ + sub).c_str(), 0700);

  if (auto s = LoadTextProto(src + "/partnership.textproto", &partnership_);
      !s.ok())
    return s;
  gateway_port_ = FreePort();
  for (auto& org : *partnership_.mutable_organisations()) {
    holder_ports_[org.id()] = FreePort();
    local_ports_[org.id()] = FreePort();
    org.set_agent_address(holder_address(org.id()));
  }
  if (auto s =
          WriteFile(dir_ + "/partnership.textproto", PrintText(partnership_));
      !s.ok()) {
    return s;
  }
  const std::string log = dir_ + "/logs/setup.log";
  if (RunCommand(
          absl::StrCat("cp -r '", src, "/agreements' '", dir_, "/agreements'"),
          log) != 0) {
    return absl::InternalError("cannot copy agreements: " + ReadAll(log));
  }
  const std::string pki_dir = SourceDir() + "/deploy/pki";
  if (RunCommand(absl::StrCat(pki_dir, "/make-pki.sh --partnership '", dir_,
                              "/partnership.textproto' --out '", pki(), "'"),
                 log) != 0 ||
      RunCommand(absl::StrCat(pki_dir, "/make-test-certs.sh --out '", pki(),
                              "' --partnership-id ", partnership_.id()),
                 log) != 0) {
    return absl::InternalError("PKI scripts failed:\n" + ReadAll(log));
  }
  if (auto s = WriteFile(dir_ + "/keys/linkage.key",
                         HexEncode(RandomBytes(32)) + "\n", 0600);
      !s.ok()) {
    return s;
  }

  accord::v1::GatewayConfig gw;
  if (auto s = LoadTextProto(src + "/config/gateway.textproto", &gw); !s.ok())
    return s;
  gw.set_listen_address(gateway_address());
  if (edit_gateway) edit_gateway(&gw);
  if (auto s = WriteFile(dir_ + "/gateway.textproto", PrintText(gw)); !s.ok())
    return s;
  for (const char* org : kOrgs) {
    accord::v1::AgentConfig ac;
    if (auto s = LoadTextProto(
            absl::StrCat(src, "/config/agent-", org, ".textproto"), &ac);
        !s.ok()) {
      return s;
    }
    ac.set_holder_listen_address(holder_address(org));
    ac.set_local_listen_address(local_address(org));
    ac.set_gateway_address(gateway_address());
    if (auto s = WriteFile(absl::StrCat(dir_, "/agent-", org, ".textproto"),
                           PrintText(ac));
        !s.ok()) {
      return s;
    }
    if (auto s = WriteFile(absl::StrCat(dir_, "/keys/pseudonym-", org, ".key"),
                           HexEncode(RandomBytes(32)) + "\n", 0600);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string TestPartnership::gateway_address() const {
  return absl::StrCat("127.0.0.1:", gateway_port_);
}
std::string TestPartnership::holder_address(const std::string& org) const {
  return absl::StrCat("127.0.0.1:", holder_ports_.at(org));
}
std::string TestPartnership::local_address(const std::string& org) const {
  return absl::StrCat("127.0.0.1:", local_ports_.at(org));
}

absl::Status TestPartnership::StartGateway() {
  gateway_ = std::make_unique<Process>(
      "accord-gateway",
      std::vector<std::string>{BinDir() + "/accord-gateway", "--config",
                               dir_ + "/gateway.textproto"},
      dir_ + "/logs/gateway.log");
  if (auto s = gateway_->Start(); !s.ok()) return s;
  return gateway_->WaitForLog("serving", 20000);
}

absl::Status TestPartnership::StartAgent(const std::string& org) {
  auto p = std::make_unique<Process>(
      "accord-agent[" + org + "]",
      std::vector<std::string>{
          BinDir() + "/accord-agent", "--config",
          absl::StrCat(dir_, "/agent-", org, ".textproto")},
      absl::StrCat(dir_, "/logs/agent-", org, ".log"));
  if (auto s = p->Start(); !s.ok()) return s;
  auto s = p->WaitForLog("local API on port", 20000);
  agents_[org] = std::move(p);
  return s;
}

absl::Status TestPartnership::StartAll() {
  if (auto s = StartGateway(); !s.ok()) return s;
  for (const char* org : kOrgs) {
    if (auto s = StartAgent(org); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TestPartnership::LoadExampleData(const std::string& org) {
  std::string output;
  const int rc = Accordctl(
      absl::StrCat("agent load ", SourceDir(), "/deploy/examples/data/", org,
                   ".textproto --as org-", org, " --agent ",
                   local_address(org)),
      &output);
  if (rc != 0)
    return absl::InternalError(
        absl::StrCat("loading ", org, " failed: ", output));
  return absl::OkStatus();
}

int TestPartnership::Accordctl(const std::string& args, std::string* output) {
  const std::string out_file = dir_ + "/logs/accordctl.out";
  std::remove(out_file.c_str());
  // accordctl runs as a named practitioner unless the test names one.
  const std::string actor =
      absl::StrContains(args, "--user")
          ? ""
          : "ACCORD_USER=test-practitioner ACCORD_ROLE=practitioner ";
  const int rc = RunCommand(absl::StrCat(actor, "ACCORD_PKI='", pki(),
                                         "' ACCORD_GATEWAY=", gateway_address(),
                                         " ", BinDir(), "/accordctl ", args),
                            out_file);
  *output = ReadAll(out_file);
  return rc;
}

std::shared_ptr<grpc::Channel> TestPartnership::Channel(
    const std::string& address, const std::string& ca, const std::string& cert,
    const std::string& key, const std::string& expected_server) {
  accord::v1::TlsFiles tls;
  tls.set_ca_file(ca);
  tls.set_cert_file(cert);
  tls.set_key_file(key);
  auto creds = MakeChannelCredentials(tls, expected_server);
  if (!creds.ok()) {
    std::fprintf(stderr, "channel credentials: %s\n",
                 std::string(creds.status().message()).c_str());
    return nullptr;
  }
  return grpc::CreateCustomChannel(address, *creds, DefaultChannelArguments());
}

std::shared_ptr<grpc::Channel> TestPartnership::GatewayChannel(
    const std::string& cert_name) {
  return Channel(gateway_address(), pki() + "/ca.pem",
                 pki() + "/" + cert_name + ".pem",
                 pki() + "/" + cert_name + ".key",
                 SpiffeId(partnership_id(), PrincipalKind::kGateway));
}

std::shared_ptr<grpc::Channel> TestPartnership::AgentHolderChannel(
    const std::string& org, const std::string& cert_name) {
  return Channel(holder_address(org), pki() + "/ca.pem",
                 pki() + "/" + cert_name + ".pem",
                 pki() + "/" + cert_name + ".key",
                 SpiffeId(partnership_id(), PrincipalKind::kAgent, org));
}

std::shared_ptr<grpc::Channel> TestPartnership::AgentLocalChannel(
    const std::string& org, const std::string& cert_name) {
  return Channel(local_address(org), pki() + "/ca.pem",
                 pki() + "/" + cert_name + ".pem",
                 pki() + "/" + cert_name + ".key",
                 SpiffeId(partnership_id(), PrincipalKind::kAgent, org));
}

std::shared_ptr<grpc::Channel> TestPartnership::ChannelWithoutClientCert(
    const std::string& address) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadAll(pki() + "/ca.pem");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options),
                                   args);
}

namespace {
// Every entry matching `filter`, all pages, from the Auditor service behind
// `channel`.
absl::StatusOr<std::vector<accord::v1::AuditEntry>> SearchLog(
    const std::shared_ptr<grpc::Channel>& channel,
    accord::v1::AuditSearchRequest filter) {
  std::vector<accord::v1::AuditEntry> all;
  auto stub = accord::v1::Auditor::NewStub(channel);
  filter.set_page_size(1000);
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(15));
    accord::v1::AuditSearchResponse resp;
    const grpc::Status status = stub->Search(&ctx, filter, &resp);
    if (!status.ok()) {
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat("audit search: ", status.error_message()));
    }
    all.insert(all.end(), resp.entries().begin(), resp.entries().end());
    filter.set_page_token(resp.next_page_token());
  } while (!filter.page_token().empty());
  return all;
}
}  // namespace

absl::StatusOr<std::vector<accord::v1::AuditEntry>>
TestPartnership::SearchAudit(accord::v1::AuditSearchRequest filter,
                             const std::string& auditor) {
  return SearchLog(GatewayChannel(auditor), std::move(filter));
}

absl::StatusOr<std::vector<accord::v1::AuditEntry>>
TestPartnership::SearchAgentAudit(const std::string& org,
                                  accord::v1::AuditSearchRequest filter,
                                  const std::string& reader) {
  return SearchLog(
      AgentLocalChannel(org, reader.empty() ? "org-" + org : reader),
      std::move(filter));
}

absl::Status TestPartnership::IssueCertificate(const std::string& name,
                                               const std::string& uri,
                                               const std::string& eku) {
  const std::string log = dir_ + "/logs/test-pki.log";
  if (RunCommand(absl::StrCat("bash -c 'source ", SourceDir(),
                              "/deploy/pki/pki-lib.sh && pki_env ", pki(),
                              " && pki_issue ", pki(), " ", name,
                              " /O=", partnership_id(), "/OU=test/CN=", name,
                              " URI:", uri, " ", eku, " 30'"),
                 log) != 0) {
    return absl::InternalError("issuing " + name + " failed:\n" + ReadAll(log));
  }
  return absl::OkStatus();
}

absl::Status TestPartnership::RevokeCertificate(const std::string& name) {
  const std::string log = dir_ + "/logs/test-pki.log";
  if (RunCommand(absl::StrCat(SourceDir(), "/deploy/pki/revoke.sh --out ",
                              pki(), " ", pki(), "/", name, ".pem"),
                 log) != 0) {
    return absl::InternalError("revoking " + name + " failed:\n" +
                               ReadAll(log));
  }
  // The servers say how many certificates the list they reloaded revokes.
  const std::string count_file = dir_ + "/logs/crl-count.out";
  std::remove(count_file.c_str());
  if (RunCommand(absl::StrCat("openssl crl -noout -text -in ", pki(),
                              "/crl.pem | grep -c 'Serial Number'"),
                 count_file) != 0) {
    return absl::InternalError("cannot read " + pki() + "/crl.pem");
  }
  std::string count = ReadAll(count_file);
  while (!count.empty() && (count.back() == '\n' || count.back() == ' '))
    count.pop_back();
  const std::string reloaded =
      absl::StrCat("CRL reloaded (", count, " revoked)");
  std::vector<Process*> running;
  if (gateway_ != nullptr && gateway_->Running())
    running.push_back(gateway_.get());
  for (auto& [org, agent] : agents_) {
    if (agent != nullptr && agent->Running()) running.push_back(agent.get());
  }
  for (Process* p : running) {
    if (auto s = p->WaitForLog(reloaded, 20000); !s.ok()) return s;
  }
  return absl::OkStatus();
}

accord::v1::TlsFiles TestPartnership::CertificateFiles(
    const std::string& name) const {
  accord::v1::TlsFiles tls;
  tls.set_ca_file(pki() + "/ca.pem");
  tls.set_cert_file(absl::StrCat(pki(), "/", name, ".pem"));
  tls.set_key_file(absl::StrCat(pki(), "/", name, ".key"));
  return tls;
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>> TestPartnership::TokensOf(
    const std::string& org, const std::string& local_id) {
  auto stub =
      accord::v1::AgentLocal::NewStub(AgentLocalChannel(org, "org-" + org));
  grpc::ClientContext ctx;
  PrepareCall(&ctx, 10);
  accord::v1::SubjectTokensRequest req;
  req.set_subject_local_id(local_id);
  accord::v1::SubjectTokensResponse resp;
  auto status = stub->SubjectTokens(&ctx, req, &resp);
  if (!status.ok()) return absl::InternalError(status.error_message());
  return std::vector<accord::v1::SubjectToken>(resp.tokens().begin(),
                                               resp.tokens().end());
}

absl::StatusOr<accord::v1::QueryResponse> TestPartnership::QueryAbout(
    const std::string& requester, const std::string& holder,
    const std::string& local_id, const std::string& purpose,
    const std::string& user, const std::string& role) {
  auto tokens = TokensOf(holder, local_id);
  if (!tokens.ok()) return tokens.status();
  auto gw = accord::v1::Gateway::NewStub(GatewayChannel(requester));
  grpc::ClientContext ctx;
  PrepareCall(&ctx, 15, user, role);
  accord::v1::QueryRequest q;
  q.set_purpose(purpose);
  q.set_mode(accord::v1::QUERY_MODE_RECORDS);
  q.add_holders(holder);
  for (const auto& t : *tokens) *q.add_subjects() = t;
  accord::v1::QueryResponse resp;
  auto status = gw->Query(&ctx, q, &resp);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return resp;
}

}  // namespace accord::testing
