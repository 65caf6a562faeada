// SerialExecutor: one worker thread running posted tasks in order.
//
// For work that may block (a database read, a signature) and must not run on
// gRPC's event threads or on the audit log's writer thread: low-volume
// services such as the auditor API hand their bodies to one of these instead
// of starting a thread per request.
#ifndef ACCORD_RUNTIME_SERIAL_EXECUTOR_H_
#define ACCORD_RUNTIME_SERIAL_EXECUTOR_H_

#include <deque>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace accord {

class SerialExecutor {
 public:
  SerialExecutor();
  // Runs every task already posted, then joins the worker.
  ~SerialExecutor();
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  // Queues `task`; tasks run one at a time in the order posted. A task
  // posted while the executor is being destroyed runs on the caller.
  void Post(absl::AnyInvocable<void() &&> task);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_SERIAL_EXECUTOR_H_
