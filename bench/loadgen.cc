// loadgen: a closed-loop load generator over Accord's real gRPC API with
// mutual TLS.
//
// `--concurrency` calls are kept in flight, spread over `--channels`
// channels (each its own HTTP/2 connection); each call's completion starts
// the next one (gRPC callback API, no thread per call). After `--warmup`
// seconds, completions are counted and timed for `--duration` seconds. It
// prints one line of key=value pairs: QPS, latency percentiles, errors.
// With `--rate N` the load is open instead: N calls a second whatever the
// answers (a steady partner), each with a `--deadline` (seconds, default
// 10); the calls started in the window are counted, however long they take,
// and the line adds success_pct.
//
// Targets, all answering the same disclosure for the same synthetic subjects:
//   direct   Holder.Disclose on an agent, presenting the gateway's
//            certificate (the holder API admits only the gateway)
//   nginx    Holder.Disclose through a relay that presents the gateway's
//            certificate on both sides (nginx grpc_pass)
//   gateway  Gateway.Query through accord-gateway as the requester
//            organisation: policy, audit and fan-out to the one holder
//
//   loadgen --target gateway --address 127.0.0.1:27443 --pki DIR
//           --partnership FILE --agreements F1,F2 --linkage-key FILE
//           [--subjects 3000] [--concurrency 64] [--channels 4]
//           [--duration 10] [--warmup 2] [--watch-pid PID]
//           [--rate N] [--deadline S]
//   loadgen --write-dataset FILE --subjects N
//           writes the synthetic subjects (with a risk record and consent
//           each) as an AgentDataset textproto for `accordctl agent load`.
//   loadgen --fsync-probe DIR
//           times 4 KiB appends each followed by fdatasync in DIR: the floor
//           under any durable commit (the audit log's) on that disk.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/identity.h"
#include "runtime/textproto.h"
#include "runtime/tls.h"

namespace accord::bench {
namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// The synthetic subjects. Subject i is "Bench Subject", born on a date that
// is unique for i < 16,800, so its NAME_DOB token is unique.

std::string DateOfBirth(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", 1950 + i % 50,
                1 + (i / 50) % 12, 1 + (i / 600) % 28);
  return buf;
}
std::string LocalId(int i) { return absl::StrCat("BENCH-", i); }

constexpr char kGivenName[] = "Bench";
constexpr char kFamilyName[] = "Subject";
constexpr int kMaxSubjects = 50 * 12 * 28;

int WriteDataset(const std::string& path, int subjects) {
  std::ofstream out(path);
  if (!out) {
    std::fprintf(stderr, "loadgen: cannot write %s\n", path.c_str());
    return 1;
  }
  out << "# Synthetic benchmark subjects (no real person).\n";
  for (int i = 0; i < subjects; ++i) {
    out << "subjects { local_id: \"" << LocalId(i) << "\""
        << " fields { key: \"given_name\" value: \"" << kGivenName << "\" }"
        << " fields { key: \"family_name\" value: \"" << kFamilyName << "\" }"
        << " fields { key: \"date_of_birth\" value: \"" << DateOfBirth(i)
        << "\" }"
        << " fields { key: \"postcode\" value: \"ND1 7HX\" } }\n";
  }
  for (int i = 0; i < subjects; ++i) {
    out << "records { local_id: \"" << LocalId(i) << "-R1\""
        << " subject_local_id: \"" << LocalId(i) << "\""
        << " category: DATA_CATEGORY_RISK provenance: PROVENANCE_FACT"
        << " service: \"outreach\" recorded_at { seconds: 1767225600 }"
        << " author_role: \"IDVA\""
        << " text: \"DASH assessment: medium risk. Safety plan agreed; "
           "review in four weeks. Prefers contact by text on weekday "
           "mornings.\" }\n";
  }
  for (int i = 0; i < subjects; ++i) {
    out << "consents { id: \"" << LocalId(i) << "-C1\""
        << " subject_local_id: \"" << LocalId(i) << "\""
        << " granted_to_kinds: ORG_KIND_POLICE purposes: \"safeguarding\""
        << " categories: DATA_CATEGORY_IDENTITY"
        << " categories: DATA_CATEGORY_CONTACT"
        << " categories: DATA_CATEGORY_RISK"
        << " given_at { seconds: 1767225600 } method: CONSENT_METHOD_WRITTEN"
        << " recorded_by: \"IDVA\" }\n";
  }
  return out.good() ? 0 : 1;
}

// Times `n` appends of 4 KiB, each made durable with fdatasync, in `dir`.
int FsyncProbe(const std::string& dir) {
  const std::string path = dir + "/fsync-probe";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "loadgen: cannot create %s\n", path.c_str());
    return 1;
  }
  constexpr int kSyncs = 300;
  const std::string block(4096, 'x');
  std::vector<double> us;
  for (int i = 0; i < kSyncs; ++i) {
    if (write(fd, block.data(), block.size()) !=
        static_cast<ssize_t>(block.size())) {
      std::fprintf(stderr, "loadgen: write to %s failed\n", path.c_str());
      return 1;
    }
    const auto t0 = Clock::now();
    fdatasync(fd);
    us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  close(fd);
  unlink(path.c_str());
  std::sort(us.begin(), us.end());
  std::printf("loadgen fsync_p50_us=%.1f fsync_p99_us=%.1f\n", us[kSyncs / 2],
              us[kSyncs * 99 / 100]);
  return 0;
}

// ---------------------------------------------------------------------------
// Options

struct Options {
  std::string target;
  std::string address;
  std::string pki;
  std::string partnership_file;
  std::vector<std::string> agreement_files;
  std::string linkage_key_file;
  std::string requester = "police";
  std::string holder = "womens-centre";
  std::string purpose = "safeguarding";
  int subjects = 3000;
  int concurrency = 1;
  int channels = 1;
  double duration_s = 10;
  double warmup_s = 2;
  int watch_pid = 0;
  double rate = 0;  // calls a second, open loop; 0: closed loop
  double deadline_s = 10;
};

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "loadgen: %s\n"
               "usage: loadgen --target direct|nginx|gateway --address "
               "HOST:PORT --pki DIR\n"
               "               --partnership FILE --agreements F1,F2,... "
               "--linkage-key FILE\n"
               "               [--requester ORG] [--holder ORG] [--purpose P] "
               "[--subjects N]\n"
               "               [--concurrency N] [--channels N] [--duration S] "
               "[--warmup S]\n"
               "               [--watch-pid PID] [--rate N] [--deadline S]\n"
               "       loadgen --write-dataset FILE --subjects N\n"
               "       loadgen --fsync-probe DIR\n",
               error.c_str());
  std::exit(2);
}

// CPU seconds (user + system) used so far by process `pid`, or -1.
double ProcessCpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold
  // spaces: state is field 3, utime 14, stime 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> f =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  int64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// ---------------------------------------------------------------------------
// The closed loop

// What the loop needs from a target: start one call for subject `i` and
// report whether its answer is the expected one.
template <typename Response>
class Target {
 public:
  virtual ~Target() = default;
  virtual void Start(int channel, int subject, grpc::ClientContext* ctx,
                     Response* response,
                     std::function<void(grpc::Status)> done) = 0;
  // Empty when `response` is a complete answer; otherwise what is wrong.
  virtual std::string Check(const Response& response) const = 0;
};

struct Result {
  uint64_t completed = 0;  // in the measured window
  uint64_t errors = 0;     // in the measured window
  uint64_t total = 0;      // every completion, warm-up included
  double window_s = 0;
  double server_cpu_s = -1;
  std::vector<int64_t> latencies_ns;
  std::string first_error;
};

template <typename Response>
class Loop {
 public:
  Loop(Target<Response>* target, const Options& options)
      : target_(target), options_(options), slots_(options.concurrency) {
    for (int i = 0; i < options.concurrency; ++i) {
      slots_[i].loop = this;
      slots_[i].channel = i % options.channels;
      slots_[i].next_subject = i;
      slots_[i].latencies_ns.reserve(1 << 16);
    }
  }

  Result Run() {
    {
      absl::MutexLock lock(&mu_);
      running_ = options_.concurrency;
    }
    for (auto& slot : slots_) StartCall(&slot);
    std::this_thread::sleep_for(
        std::chrono::duration<double>(options_.warmup_s));
    const double cpu0 =
        options_.watch_pid > 0 ? ProcessCpuSeconds(options_.watch_pid) : -1;
    const auto t0 = Clock::now();
    phase_.store(kMeasuring);
    std::this_thread::sleep_for(
        std::chrono::duration<double>(options_.duration_s));
    phase_.store(kStopping);
    const auto t1 = Clock::now();
    const double cpu1 =
        options_.watch_pid > 0 ? ProcessCpuSeconds(options_.watch_pid) : -1;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](int* running) { return *running == 0; }, &running_));
    }
    Result r;
    {
      absl::MutexLock lock(&mu_);
      r.first_error = first_error_;
    }
    r.window_s = std::chrono::duration<double>(t1 - t0).count();
    if (cpu0 >= 0 && cpu1 >= 0) r.server_cpu_s = cpu1 - cpu0;
    for (auto& slot : slots_) {
      r.completed += slot.completed;
      r.errors += slot.errors;
      r.total += slot.total;
      r.latencies_ns.insert(r.latencies_ns.end(), slot.latencies_ns.begin(),
                            slot.latencies_ns.end());
    }
    return r;
  }

 private:
  enum Phase { kWarmup, kMeasuring, kStopping };

  // One in-flight call at a time; only its own completion touches it.
  struct Slot {
    Loop* loop;
    int channel = 0;
    int next_subject = 0;
    std::unique_ptr<grpc::ClientContext> ctx;
    Response response;
    Clock::time_point start;
    uint64_t completed = 0, errors = 0, total = 0;
    std::vector<int64_t> latencies_ns;
  };

  void StartCall(Slot* slot) {
    slot->ctx = std::make_unique<grpc::ClientContext>();
    slot->ctx->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(options_.deadline_s)));
    slot->response.Clear();
    const int subject = slot->next_subject % options_.subjects;
    slot->next_subject += options_.concurrency;
    slot->start = Clock::now();
    target_->Start(
        slot->channel, subject, slot->ctx.get(), &slot->response,
        [slot](grpc::Status status) { slot->loop->Completed(slot, status); });
  }

  void Completed(Slot* slot, const grpc::Status& status) {
    const auto end = Clock::now();
    ++slot->total;
    std::string error;
    if (!status.ok()) {
      error = absl::StrCat("status ", status.error_code(), ": ",
                           status.error_message());
    } else {
      error = target_->Check(slot->response);
    }
    const Phase phase = static_cast<Phase>(phase_.load());
    if (phase == kMeasuring) {
      if (error.empty()) {
        ++slot->completed;
        slot->latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end -
                                                                 slot->start)
                .count());
      } else {
        ++slot->errors;
      }
    }
    if (!error.empty()) {
      absl::MutexLock lock(&mu_);
      if (first_error_.empty()) first_error_ = error;
    }
    if (phase == kStopping) {
      absl::MutexLock lock(&mu_);
      --running_;
      return;
    }
    StartCall(slot);
  }

  Target<Response>* target_;
  const Options& options_;
  std::vector<Slot> slots_;
  std::atomic<int> phase_{kWarmup};
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

// The open loop: `rate` calls a second, started on time whatever the
// answers, each with its own deadline. Calls started in the measured window
// are counted when they end, however late.
template <typename Response>
class OpenLoop {
 public:
  OpenLoop(Target<Response>* target, const Options& options)
      : target_(target), options_(options) {}

  Result Run() {
    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / options_.rate));
    const auto start = Clock::now();
    const auto measure_from =
        start + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(options_.warmup_s));
    const auto end =
        measure_from + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(options_.duration_s));
    const double cpu0 =
        options_.watch_pid > 0 ? ProcessCpuSeconds(options_.watch_pid) : -1;
    int n = 0;
    for (auto next = start; next < end; next += period, ++n) {
      std::this_thread::sleep_until(next);
      Start(n, next >= measure_from);
    }
    const double cpu1 =
        options_.watch_pid > 0 ? ProcessCpuSeconds(options_.watch_pid) : -1;
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* running) { return *running == 0; }, &running_));
    result_.window_s =
        std::chrono::duration<double>(end - measure_from).count();
    if (cpu0 >= 0 && cpu1 >= 0) result_.server_cpu_s = cpu1 - cpu0;
    return result_;
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    Response response;
    Clock::time_point start;
    bool measured = false;
  };

  void Start(int n, bool measured) {
    auto* call = new Call;
    call->ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(options_.deadline_s)));
    call->start = Clock::now();
    call->measured = measured;
    {
      absl::MutexLock lock(&mu_);
      ++running_;
    }
    target_->Start(n % options_.channels, n % options_.subjects, &call->ctx,
                   &call->response,
                   [this, call](grpc::Status status) { Done(call, status); });
  }

  void Done(Call* call, const grpc::Status& status) {
    const auto end = Clock::now();
    const std::string error = status.ok()
                                  ? target_->Check(call->response)
                                  : absl::StrCat("status ", status.error_code(),
                                                 ": ", status.error_message());
    absl::MutexLock lock(&mu_);
    ++result_.total;
    if (call->measured) {
      if (error.empty()) {
        ++result_.completed;
        result_.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(end -
                                                                 call->start)
                .count());
      } else {
        ++result_.errors;
      }
    }
    if (!error.empty() && result_.first_error.empty())
      result_.first_error = error;
    --running_;
    delete call;
  }

  Target<Response>* target_;
  const Options& options_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  Result result_ ABSL_GUARDED_BY(mu_);
};

// Closed or open, as the options say.
template <typename Response>
Result RunLoad(Target<Response>* target, const Options& o) {
  if (o.rate > 0) return OpenLoop<Response>(target, o).Run();
  return Loop<Response>(target, o).Run();
}

// ---------------------------------------------------------------------------
// Targets

std::vector<std::shared_ptr<grpc::Channel>> Channels(
    const Options& o, const std::string& cert_name,
    const std::string& server_identity) {
  accord::v1::TlsFiles files;
  files.set_ca_file(o.pki + "/ca.pem");
  files.set_cert_file(o.pki + "/" + cert_name + ".pem");
  files.set_key_file(o.pki + "/" + cert_name + ".key");
  auto creds = MakeChannelCredentials(files, server_identity);
  if (!creds.ok()) Usage(std::string(creds.status().message()));
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args = DefaultChannelArguments();
    // A connection of its own for every channel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("accord.loadgen.channel", i);
    channels.push_back(grpc::CreateCustomChannel(o.address, *creds, args));
  }
  for (auto& c : channels) {
    if (!c->WaitForConnected(std::chrono::system_clock::now() +
                             std::chrono::seconds(10))) {
      Usage(absl::StrCat("cannot connect to ", o.address, " as ", cert_name,
                         " expecting ", server_identity));
    }
  }
  return channels;
}

std::vector<std::vector<accord::v1::SubjectToken>> SubjectTokens(
    const Options& o) {
  auto key = linkage::LinkageKey::Load(o.linkage_key_file);
  if (!key.ok()) Usage(std::string(key.status().message()));
  std::vector<std::vector<accord::v1::SubjectToken>> tokens;
  for (int i = 0; i < o.subjects; ++i) {
    linkage::IdentifierSet ids;
    ids.given_name = kGivenName;
    ids.family_name = kFamilyName;
    ids.date_of_birth = DateOfBirth(i);
    auto t = linkage::DeriveTokens(*key, ids);
    if (!t.ok()) Usage(std::string(t.status().message()));
    tokens.push_back(std::move(*t));
  }
  return tokens;
}

const char* const kFields[] = {"given_name", "family_name", "date_of_birth",
                               "postcode"};

// Holder.Disclose, as the gateway would send it (direct, or via a relay).
class DiscloseTarget final : public Target<accord::v1::DiscloseResponse> {
 public:
  DiscloseTarget(const Options& o, const std::string& server_identity) {
    accord::v1::Partnership partnership;
    if (auto s = LoadTextProto(o.partnership_file, &partnership); !s.ok())
      Usage(std::string(s.message()));
    channels_ = Channels(o, "gateway", server_identity);
    for (auto& c : channels_) stubs_.push_back(accord::v1::Holder::NewStub(c));

    // The decision the gateway would attach; the agent re-derives its own
    // and refuses when they differ.
    SystemClock clock;
    auto engine =
        policy::Engine::Create(o.partnership_file, o.agreement_files, &clock);
    if (!engine.ok()) Usage(std::string(engine.status().message()));
    accord::v1::DecisionRequest dreq;
    dreq.set_requester_org(o.requester);
    dreq.set_holder_org(o.holder);
    dreq.set_action(accord::v1::ACTION_QUERY);
    dreq.set_purpose(o.purpose);
    for (const char* f : kFields) dreq.add_fields(f);
    dreq.add_categories(accord::v1::DATA_CATEGORY_RISK);
    *dreq.mutable_at() = ToProtoTime(clock.Now());
    accord::v1::Decision decision = (*engine)->DecideProto(dreq);
    if (decision.verdict() != accord::v1::VERDICT_ALLOW)
      Usage("the agreements do not allow the query: " + decision.explanation());

    for (auto& tokens : SubjectTokens(o)) {
      accord::v1::DiscloseRequest r;
      r.set_request_id(absl::StrCat("bench-", requests_.size()));
      r.set_requester_org(o.requester);
      r.set_purpose(o.purpose);
      for (auto& t : tokens) *r.add_subjects() = std::move(t);
      r.set_mode(accord::v1::QUERY_MODE_RECORDS);
      *r.mutable_decision() = decision;
      for (const char* f : kFields) r.add_fields(f);
      r.add_categories(accord::v1::DATA_CATEGORY_RISK);
      r.mutable_actor()->set_user_id("bench-user");
      r.mutable_actor()->set_role("public-protection-officer");
      requests_.push_back(std::move(r));
    }
  }

  void Start(int channel, int subject, grpc::ClientContext* ctx,
             accord::v1::DiscloseResponse* response,
             std::function<void(grpc::Status)> done) override {
    stubs_[channel]->async()->Disclose(ctx, &requests_[subject], response,
                                       std::move(done));
  }

  std::string Check(const accord::v1::DiscloseResponse& r) const override {
    if (r.status() != accord::v1::HOLDER_STATUS_ANSWERED ||
        r.records_size() == 0) {
      return absl::StrCat("holder answered ",
                          accord::v1::HolderStatus_Name(r.status()), " ",
                          r.detail());
    }
    return "";
  }

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<accord::v1::Holder::Stub>> stubs_;
  std::vector<accord::v1::DiscloseRequest> requests_;
};

// Gateway.Query as the requester organisation.
class QueryTarget final : public Target<accord::v1::QueryResponse> {
 public:
  explicit QueryTarget(const Options& o) {
    accord::v1::Partnership partnership;
    if (auto s = LoadTextProto(o.partnership_file, &partnership); !s.ok())
      Usage(std::string(s.message()));
    channels_ = Channels(o, "org-" + o.requester,
                         SpiffeId(partnership.id(), PrincipalKind::kGateway));
    for (auto& c : channels_) stubs_.push_back(accord::v1::Gateway::NewStub(c));
    for (auto& tokens : SubjectTokens(o)) {
      accord::v1::QueryRequest r;
      r.set_purpose(o.purpose);
      for (auto& t : tokens) *r.add_subjects() = std::move(t);
      r.set_mode(accord::v1::QUERY_MODE_RECORDS);
      for (const char* f : kFields) r.add_fields(f);
      r.add_categories(accord::v1::DATA_CATEGORY_RISK);
      r.add_holders(o.holder);
      requests_.push_back(std::move(r));
    }
  }

  void Start(int channel, int subject, grpc::ClientContext* ctx,
             accord::v1::QueryResponse* response,
             std::function<void(grpc::Status)> done) override {
    ctx->AddMetadata(kUserMetadataKey, "bench-user");
    ctx->AddMetadata(kRoleMetadataKey, "public-protection-officer");
    stubs_[channel]->async()->Query(ctx, &requests_[subject], response,
                                    std::move(done));
  }

  std::string Check(const accord::v1::QueryResponse& r) const override {
    if (r.answers_size() != 1 ||
        r.answers(0).status() != accord::v1::HOLDER_STATUS_ANSWERED ||
        r.answers(0).records_size() == 0) {
      return absl::StrCat(
          "gateway answered ", r.answers_size(), " holders; first: ",
          r.answers_size() > 0
              ? accord::v1::HolderStatus_Name(r.answers(0).status()) + " " +
                    r.answers(0).detail()
              : std::string("none"));
    }
    return "";
  }

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<accord::v1::Gateway::Stub>> stubs_;
  std::vector<accord::v1::QueryRequest> requests_;
};

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  if (i >= sorted.size()) i = sorted.size() - 1;
  return static_cast<double>(sorted[i]) / 1000.0;
}

void Report(const Options& o, Result r) {
  std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
  const double qps = r.window_s > 0 ? r.completed / r.window_s : 0;
  std::printf(
      "loadgen target=%s concurrency=%d channels=%d window_s=%.2f "
      "completed=%" PRIu64 " errors=%" PRIu64 " total=%" PRIu64
      " qps=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f",
      o.target.c_str(), o.concurrency, o.channels, r.window_s, r.completed,
      r.errors, r.total, qps, Percentile(r.latencies_ns, 0.50),
      Percentile(r.latencies_ns, 0.90), Percentile(r.latencies_ns, 0.99),
      Percentile(r.latencies_ns, 0.999));
  if (o.rate > 0) {
    std::printf(" rate=%.1f success_pct=%.1f", o.rate,
                r.completed + r.errors > 0
                    ? 100.0 * static_cast<double>(r.completed) /
                          static_cast<double>(r.completed + r.errors)
                    : 0.0);
  }
  if (r.server_cpu_s >= 0) {
    std::printf(" server_cpu_s=%.3f server_cpu_s_per_1k=%.4f", r.server_cpu_s,
                r.completed + r.errors > 0
                    ? r.server_cpu_s * 1000.0 / (r.completed + r.errors)
                    : 0.0);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (!r.first_error.empty()) {
    std::fprintf(stderr, "loadgen: first error: %s\n", r.first_error.c_str());
  }
}

int Main(int argc, char** argv) {
  Options o;
  std::string dataset, probe;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Usage("flag " + flag + " needs a value");
    const std::string value = argv[++i];
    auto number = [&](auto* out) {
      bool ok;
      if constexpr (std::is_floating_point_v<std::decay_t<decltype(*out)>>) {
        ok = absl::SimpleAtod(value, out);
      } else {
        ok = absl::SimpleAtoi(value, out);
      }
      if (!ok || *out < 0)
        Usage(flag + " needs a non-negative number, not '" + value + "'");
    };
    if (flag == "--target") {
      o.target = value;
    } else if (flag == "--address") {
      o.address = value;
    } else if (flag == "--pki") {
      o.pki = value;
    } else if (flag == "--partnership") {
      o.partnership_file = value;
    } else if (flag == "--agreements") {
      o.agreement_files = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (flag == "--linkage-key") {
      o.linkage_key_file = value;
    } else if (flag == "--requester") {
      o.requester = value;
    } else if (flag == "--holder") {
      o.holder = value;
    } else if (flag == "--purpose") {
      o.purpose = value;
    } else if (flag == "--subjects") {
      number(&o.subjects);
    } else if (flag == "--concurrency") {
      number(&o.concurrency);
    } else if (flag == "--channels") {
      number(&o.channels);
    } else if (flag == "--duration") {
      number(&o.duration_s);
    } else if (flag == "--warmup") {
      number(&o.warmup_s);
    } else if (flag == "--watch-pid") {
      number(&o.watch_pid);
    } else if (flag == "--rate") {
      number(&o.rate);
    } else if (flag == "--deadline") {
      number(&o.deadline_s);
    } else if (flag == "--write-dataset") {
      dataset = value;
    } else if (flag == "--fsync-probe") {
      probe = value;
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.subjects < 1 || o.subjects > kMaxSubjects)
    Usage(absl::StrCat("--subjects must be 1..", kMaxSubjects));
  if (!dataset.empty()) return WriteDataset(dataset, o.subjects);
  if (!probe.empty()) return FsyncProbe(probe);
  if (o.concurrency < 1) Usage("--concurrency must be at least 1");
  if (o.channels < 1 || o.channels > o.concurrency)
    Usage("--channels must be 1..concurrency");
  if (o.address.empty() || o.pki.empty() || o.partnership_file.empty() ||
      o.linkage_key_file.empty()) {
    Usage("--address, --pki, --partnership and --linkage-key are required");
  }

  accord::v1::Partnership partnership;
  if (auto s = LoadTextProto(o.partnership_file, &partnership); !s.ok())
    Usage(std::string(s.message()));
  if (o.target == "direct" || o.target == "nginx") {
    if (o.agreement_files.empty()) Usage("--agreements is required");
    // The relay stands where the gateway stands and presents its identity.
    const std::string server =
        o.target == "direct"
            ? SpiffeId(partnership.id(), PrincipalKind::kAgent, o.holder)
            : SpiffeId(partnership.id(), PrincipalKind::kGateway);
    DiscloseTarget target(o, server);
    Report(o, RunLoad(&target, o));
  } else if (o.target == "gateway") {
    QueryTarget target(o);
    Report(o, RunLoad(&target, o));
  } else {
    Usage("--target must be direct, nginx or gateway");
  }
  return 0;
}

}  // namespace
}  // namespace accord::bench

int main(int argc, char** argv) { return accord::bench::Main(argc, argv); }
