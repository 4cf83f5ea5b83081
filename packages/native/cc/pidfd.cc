// pidfds: a handle on one process that cannot be confused with a later process reusing its pid, so ferry can signal
// and watch the processes it started (criu, runtimes) without the kill(pid) race.
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// pidfdOpen(pid) -> fd (CLOEXEC, as every pidfd is). The caller owns it.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "pid must be a number");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) throw ErrnoError(env, "pidfd_open", "pid=" + std::to_string(pid), errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdSendSignal(fd, signal) -> undefined
Napi::Value PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "fd and signal must be numbers");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) != 0) {
    throw ErrnoError(env, "pidfd_send_signal", "fd=" + std::to_string(fd) + ", signal=" + std::to_string(sig), errno);
  }
  return env.Undefined();
}

// pidfdGetfd(pidfd, targetFd) -> fd: a duplicate (CLOEXEC) of fd `targetFd` of the process behind the pidfd, as
// pidfd_getfd(2) makes it (ptrace-attach rights over that process needed). The caller owns it.
Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "pidfd and targetFd must be numbers");
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int target = info[1].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
  if (fd < 0) throw ErrnoError(env, "pidfd_getfd", "pidfd=" + std::to_string(pidfd) + ", fd=" + std::to_string(target), errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSendSignal", Napi::Function::New(env, PidfdSendSignal, "pidfdSendSignal"));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd, "pidfdGetfd"));
}

}  // namespace ferry
