// Engine: the current PolicySet behind an atomically swapped shared_ptr.
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace accord::policy {

Engine::Engine(std::string partnership_file,
               std::vector<std::string> agreement_files, const Clock* clock)
    : partnership_file_(std::move(partnership_file)),
      agreement_files_(std::move(agreement_files)),
      clock_(clock) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    std::string partnership_file, std::vector<std::string> agreement_files,
    const Clock* clock) {
  std::unique_ptr<Engine> engine(new Engine(std::move(partnership_file),
                                            std::move(agreement_files), clock));
  absl::MutexLock lock(&engine->reload_mu_);
  if (auto s = engine->ReloadLocked(); !s.ok()) return s;
  return engine;
}

std::vector<Engine::FileStamp> Engine::Stamps() const {
  std::vector<FileStamp> out;
  out.reserve(agreement_files_.size() + 1);
  auto stamp = [&](const std::string& path) {
    FileStamp s;
    s.path = path;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      s.size = static_cast<int64_t>(st.st_size);
      s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                   st.st_mtim.tv_nsec;
    }
    out.push_back(std::move(s));
  };
  stamp(partnership_file_);
  for (const auto& f : agreement_files_) stamp(f);
  return out;
}

absl::Status Engine::ReloadLocked() {
  // Stamps are taken before reading so a write racing the read is seen next
  // time.
  std::vector<FileStamp> stamps = Stamps();
  auto loaded = PolicySet::Load(partnership_file_, agreement_files_);
  if (!loaded.ok()) return loaded.status();
  std::atomic_store(&current_, std::move(*loaded));
  stamps_ = std::move(stamps);
  return absl::OkStatus();
}

absl::Status Engine::Reload() {
  absl::MutexLock lock(&reload_mu_);
  return ReloadLocked();
}

absl::StatusOr<bool> Engine::ReloadIfChanged() {
  absl::MutexLock lock(&reload_mu_);
  if (Stamps() == stamps_) return false;
  if (auto s = ReloadLocked(); !s.ok()) return s;
  return true;
}

std::shared_ptr<const PolicySet> Engine::current() const {
  return std::atomic_load(&current_);
}

Decision Engine::Decide(const Request& request) const {
  std::shared_ptr<const PolicySet> policy = current();
  Decision d;
  if (request.at == absl::InfinitePast()) {
    Request at_now = request;
    at_now.at = clock_->Now();
    d = policy->Decide(at_now);
  } else {
    d = policy->Decide(request);
  }
  d.policy = std::move(policy);
  return d;
}

accord::v1::Decision Engine::DecideProto(
    const accord::v1::DecisionRequest& request) const {
  return current()->DecideProto(request, clock_->Now());
}

std::string Engine::Explain(const Request& request) const {
  if (request.at == absl::InfinitePast()) {
    Request at_now = request;
    at_now.at = clock_->Now();
    return current()->Explain(at_now);
  }
  return current()->Explain(request);
}

std::vector<std::string> Engine::CandidateHolders(absl::string_view requester,
                                                  accord::v1::Action action,
                                                  absl::string_view purpose,
                                                  absl::Time at) const {
  return current()->CandidateHolders(requester, action, purpose, at);
}

std::vector<accord::v1::AgreementSummary> Engine::Register(
    bool include_inactive) const {
  return current()->Register(clock_->Now(), include_inactive);
}

}  // namespace accord::policy
