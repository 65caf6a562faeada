#include "runtime/serial_executor.h"

#include <utility>

namespace accord {

SerialExecutor::SerialExecutor() : worker_([this] { Run(); }) {}

SerialExecutor::~SerialExecutor() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  worker_.join();
}

void SerialExecutor::Post(absl::AnyInvocable<void() &&> task) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      return;
    }
  }
  std::move(task)();
}

void SerialExecutor::Run() {
  while (true) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !tasks_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace accord
