// Sockets created inside another network namespace. A socket belongs to the namespace of the thread that created it
// for its whole life, so the thread only has to be in the namespace for the socket() call: a dedicated thread joins
// the namespace (setns), creates and binds the socket, and ends. It must be a thread of its own: a libuv pool
// thread (or the main thread) left in another namespace would create every later socket of the process there.
//
// Only the netlink flavour is exported for now (NFQUEUE, src/nfqueue.ts); OpenSocketInNetns is the general step, to
// be folded into the generic "socket in a netns" primitive once there is one.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// socket(domain, type | SOCK_CLOEXEC, protocol) inside the network namespace at nsPath (or the caller's own when
// nsPath is empty), on a thread of its own. Returns the fd, or -1 with `failure` set.
int OpenSocketInNetns(const std::string& nsPath, int domain, int type, int protocol, ErrnoFailure& failure) {
  int result = -1;
  auto create = [&]() {
    if (!nsPath.empty()) {
      int ns = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0) return failure.Set("open", nsPath, errno);
      int rc = setns(ns, CLONE_NEWNET);
      int err = errno;
      close(ns);
      if (rc != 0) return failure.Set("setns", nsPath + ", CLONE_NEWNET", err);
    }
    result = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (result < 0) failure.Set("socket", nsPath.empty() ? std::string("own netns") : nsPath, errno);
  };
  if (nsPath.empty()) {
    create();
  } else {
    std::thread thread(create);
    thread.join();
  }
  return result;
}

// Forces the receive buffer past net.core.rmem_max when allowed (CAP_NET_ADMIN), else takes what the limit gives:
// a netlink socket that overflows loses messages (ENOBUFS on the next recv).
void SetReceiveBuffer(int fd, int bytes) {
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

class NetlinkOpenWorker : public PromiseWorker {
 public:
  NetlinkOpenWorker(Napi::Env env, std::string nsPath, int protocol, int receiveBufferBytes)
      : PromiseWorker(env, "FerryNetlinkOpen"),
        nsPath_(std::move(nsPath)),
        protocol_(protocol),
        receiveBufferBytes_(receiveBufferBytes) {}

  void Execute() override {
    ErrnoFailure failure;
    // Nonblocking: every read and write goes through the poll-driven message socket (src/seqpacket.ts).
    int fd = OpenSocketInNetns(nsPath_, AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, protocol_, failure);
    if (fd < 0) return Fail(failure.syscall, failure.subject, failure.err);
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks a unique port id
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      int err = errno;
      close(fd);
      return Fail("bind", "AF_NETLINK, protocol=" + std::to_string(protocol_), err);
    }
    SetReceiveBuffer(fd, receiveBufferBytes_);
    fd_ = fd;
  }

  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

 private:
  std::string nsPath_;
  int protocol_;
  int receiveBufferBytes_;
  int fd_ = -1;
};

// netlinkSocketInNetns(nsPath: string, protocol: number, receiveBufferBytes: number) -> Promise<fd>. An empty
// nsPath means the caller's own namespace. The fd is CLOEXEC, nonblocking, bound; the caller owns it.
Napi::Value NetlinkSocketInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "netlinkSocketInNetns(nsPath: string, protocol: number, receiveBufferBytes: number)");
  }
  auto* worker = new NetlinkOpenWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                                       info[2].As<Napi::Number>().Int32Value());
  return worker->Start();
}

}  // namespace

void InitNetnsSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("netlinkSocketInNetns", Napi::Function::New(env, NetlinkSocketInNetns, "netlinkSocketInNetns"));
}

}  // namespace ferry
