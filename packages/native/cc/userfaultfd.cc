// userfaultfd(2) calls for a page-fault handler of another process's memory (ferry's own lazy-pages handler): wait
// for messages on a set of uffds (on a pool thread), read them raw, and resolve faults with UFFDIO_COPY /
// UFFDIO_ZEROPAGE / UFFDIO_WAKE or drop a range with UFFDIO_UNREGISTER. Message decoding and every policy live in
// TypeScript (src/userfaultfd.ts); the ioctls report -errno instead of throwing, since EEXIST, ENOENT and ESRCH are
// outcomes the handler expects (a page already there, a range gone, a process gone).
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// uffdPoll(fds, timeoutMs) -> Promise<number[]>: the fds that have a message (or hung up) within timeoutMs.
class PollWorker : public PromiseWorker {
 public:
  PollWorker(Napi::Env env, std::vector<int> fds, int timeoutMs)
      : PromiseWorker(env, "ferry:uffdPoll"), fds_(std::move(fds)), timeoutMs_(timeoutMs) {}

  void Execute() override {
    std::vector<pollfd> polls;
    for (int fd : fds_) polls.push_back(pollfd{fd, POLLIN, 0});
    for (;;) {
      int n = poll(polls.data(), polls.size(), timeoutMs_);
      if (n >= 0) break;
      if (errno != EINTR) {
        Fail("poll", std::to_string(fds_.size()) + " userfaultfds", errno);
        return;
      }
    }
    for (const pollfd& p : polls) {
      if (p.revents != 0) ready_.push_back(p.fd);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ready_.size());
    for (size_t i = 0; i < ready_.size(); i++) out.Set(static_cast<uint32_t>(i), ready_[i]);
    return out;
  }

 private:
  std::vector<int> fds_;
  int timeoutMs_;
  std::vector<int> ready_;
};

Napi::Value UffdPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "fds must be an array");
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber()) throw Napi::TypeError::New(env, "fds must be numbers");
    fds.push_back(v.As<Napi::Number>().Int32Value());
  }
  auto* worker = new PollWorker(env, std::move(fds), IntArg(info, 1, "timeoutMs"));
  return worker->Start();
}

// uffdRead(fd) -> Buffer of whole uffd_msg records (empty when none is queued), or null at end of file. The uffd
// must be O_NONBLOCK (CRIU's restorer and the kernel's fork copies are).
Napi::Value UffdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  constexpr size_t kBatch = 64;
  std::vector<uffd_msg> msgs(kBatch);
  ssize_t n;
  do {
    n = read(fd, msgs.data(), kBatch * sizeof(uffd_msg));
  } while (n < 0 && errno == EINTR);
  if (n == 0) return env.Null();
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Buffer<uint8_t>::Copy(env, nullptr, 0);
    throw ErrnoError(env, "read", "userfaultfd " + std::to_string(fd), errno);
  }
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(msgs.data()), static_cast<size_t>(n));
}

// What a resolving ioctl returned, as the facade reads it: the bytes it did (also when it stopped short), else -err.
Napi::Value Outcome(Napi::Env env, bool ok, int64_t done, int err) {
  return Napi::Number::New(env, ok || done > 0 ? static_cast<double>(done) : -err);
}

// uffdCopy(fd, dst, src, dontWake) -> bytes copied (>= 0) or -errno (partial copies report what they copied).
Napi::Value UffdCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  uint64_t dst = Uint64Of(info[1], "dst");
  Bytes src = BytesOf(info[2], "src");
  uffdio_copy copy{};
  copy.dst = dst;
  copy.src = reinterpret_cast<uint64_t>(src.data);
  copy.len = src.length;
  copy.mode = info[3].ToBoolean().Value() ? UFFDIO_COPY_MODE_DONTWAKE : 0;
  bool ok = ioctl(fd, UFFDIO_COPY, &copy) == 0;
  return Outcome(env, ok, copy.copy, errno);
}

// uffdZeropage(fd, start, len) -> bytes mapped (>= 0) or -errno.
Napi::Value UffdZeropage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  uffdio_zeropage zero{};
  zero.range.start = Uint64Of(info[1], "start");
  zero.range.len = Uint64Of(info[2], "len");
  bool ok = ioctl(fd, UFFDIO_ZEROPAGE, &zero) == 0;
  return Outcome(env, ok, zero.zeropage, errno);
}

// uffdRange(fd, op, start, len) -> 0 or -errno; op 0 = UFFDIO_WAKE, 1 = UFFDIO_UNREGISTER.
Napi::Value UffdRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int op = IntArg(info, 1, "op");
  uffdio_range range{};
  range.start = Uint64Of(info[2], "start");
  range.len = Uint64Of(info[3], "len");
  bool ok = ioctl(fd, op == 1 ? UFFDIO_UNREGISTER : UFFDIO_WAKE, &range) == 0;
  return Outcome(env, ok, 0, errno);
}

}  // namespace

void InitUserfaultfd(Napi::Env env, Napi::Object exports) {
  exports.Set("uffdPoll", Napi::Function::New(env, UffdPoll, "uffdPoll"));
  exports.Set("uffdRead", Napi::Function::New(env, UffdRead, "uffdRead"));
  exports.Set("uffdCopy", Napi::Function::New(env, UffdCopy, "uffdCopy"));
  exports.Set("uffdZeropage", Napi::Function::New(env, UffdZeropage, "uffdZeropage"));
  exports.Set("uffdRange", Napi::Function::New(env, UffdRange, "uffdRange"));
}

}  // namespace ferry
