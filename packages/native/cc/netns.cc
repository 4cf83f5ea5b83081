// Network namespaces: a private one (only `lo`, up) and sockets created inside a given one.
//
// setns()/unshare() change the namespace of the calling *thread*. Running them on a libuv pool thread would leave that
// thread in the other namespace for every later job it runs (fs calls, DNS). Each call therefore runs on a thread of
// its own that is created for it and joined: the pool thread only waits, and the namespace change dies with the thread.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "errors.h"
#include "init.h"
#include "socket-address.h"

namespace ferry {
namespace {

// Brings `lo` up in the calling thread's network namespace (a new namespace starts with it down, and CRIU's kernel
// feature probe connects to 127.0.0.1).
bool LoopbackUp(ErrnoFailure& failure) {
  int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sk < 0) {
    failure.Set("socket", "AF_INET, SOCK_DGRAM", errno);
    return false;
  }
  ifreq ifr{};
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(sk, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags |= IFF_UP;
    ok = ioctl(sk, SIOCSIFFLAGS, &ifr) == 0;
  }
  if (!ok) failure.Set("ioctl", "lo, SIOCSIFFLAGS", errno);
  close(sk);
  return ok;
}

// createNetns() -> Promise<fd>: a new network namespace with lo up; the fd (CLOEXEC) keeps it alive.
class CreateNetnsWorker : public PromiseWorker {
 public:
  explicit CreateNetnsWorker(Napi::Env env) : PromiseWorker(env, "FerryCreateNetns") {}

 private:
  void Execute() override {
    ErrnoFailure failure;
    int fd = -1;
    std::thread([&] {
      if (unshare(CLONE_NEWNET) != 0) {
        failure.Set("unshare", "CLONE_NEWNET", errno);
        return;
      }
      if (!LoopbackUp(failure)) return;
      fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (fd < 0) failure.Set("open", "/proc/thread-self/ns/net", errno);
    }).join();
    if (failure.err != 0) {
      Fail(failure.syscall, failure.subject, failure.err);
      return;
    }
    fd_ = fd;
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

  int fd_ = -1;
};

Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  auto* worker = new CreateNetnsWorker(info.Env());
  return worker->Start();
}

// socketInNetns(netnsFd, family, type, bindAddress | null, bindPort, backlog) -> Promise<fd>: a socket created inside
// the namespace (netnsFd -1: this process's own) (a socket belongs to the namespace it was created in, whichever thread uses it later), optionally
// bound and listening. family/type are AF_* / SOCK_* numbers; the socket is CLOEXEC and blocking.
class SocketInNetnsWorker : public PromiseWorker {
 public:
  SocketInNetnsWorker(Napi::Env env, int netns, int family, int type, std::string address, int port, int backlog)
      : PromiseWorker(env, "FerrySocketInNetns"),
        netns_(netns),
        family_(family),
        type_(type),
        address_(std::move(address)),
        port_(port),
        backlog_(backlog) {}

 private:
  void Execute() override {
    ErrnoFailure failure;
    int sk = -1;
    std::thread([&] {
      // Remember where this thread was, to return there before it ends (not needed for correctness: the thread
      // ends anyway, but a thread that outlives this lambda must never stay in the other namespace).
      int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (home < 0) {
        failure.Set("open", "/proc/thread-self/ns/net", errno);
        return;
      }
      if (netns_ >= 0 && setns(netns_, CLONE_NEWNET) != 0) {
        failure.Set("setns", "fd=" + std::to_string(netns_) + ", CLONE_NEWNET", errno);
        close(home);
        return;
      }
      sk = socket(family_, type_ | SOCK_CLOEXEC, 0);
      if (sk < 0) failure.Set("socket", "family=" + std::to_string(family_) + ", type=" + std::to_string(type_), errno);
      if (netns_ >= 0 && setns(home, CLONE_NEWNET) != 0 && failure.err == 0) failure.Set("setns", "back home", errno);
      close(home);
    }).join();
    if (failure.err == 0 && !address_.empty()) {
      SocketAddress addr;
      if (!addr.Parse(family_, address_, port_)) {
        failure.Set("bind", "bad address " + address_, EINVAL);
      } else if (bind(sk, addr.sa(), addr.length) != 0) {
        failure.Set("bind", address_ + ":" + std::to_string(port_), errno);
      } else if (backlog_ > 0 && listen(sk, backlog_) != 0) {
        failure.Set("listen", address_ + ":" + std::to_string(port_), errno);
      }
    }
    if (failure.err != 0) {
      if (sk >= 0) close(sk);
      Fail(failure.syscall, failure.subject, failure.err);
      return;
    }
    fd_ = sk;
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

  int netns_, family_, type_;
  std::string address_;
  int port_, backlog_;
  int fd_ = -1;
};

Napi::Value SocketInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int i : {0, 1, 2, 4, 5}) {
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "socketInNetns(netns, family, type, address, port, backlog)");
  }
  std::string address = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  auto* worker = new SocketInNetnsWorker(env, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                                         info[2].As<Napi::Number>().Int32Value(), address, info[4].As<Napi::Number>().Int32Value(),
                                         info[5].As<Napi::Number>().Int32Value());
  return worker->Start();
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("createNetns", Napi::Function::New(env, CreateNetns, "createNetns"));
  exports.Set("socketInNetns", Napi::Function::New(env, SocketInNetns, "socketInNetns"));
}

}  // namespace ferry
