// Socket primitives Node's net module does not offer on raw fds: stream socketpairs, unix listeners, connect and
// accept with a deadline (on a pool thread, never on the event loop), addresses, and TCP's byte counters.
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"
#include "socket-address.h"

namespace ferry {
namespace {

std::string FdSubject(int fd) { return "fd=" + std::to_string(fd); }

// streamSocketPair() -> [fd, fd]: AF_UNIX SOCK_STREAM, both ends blocking and CLOEXEC.
Napi::Value StreamSocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    throw ErrnoError(env, "socketpair", "AF_UNIX, SOCK_STREAM", errno);
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, sv[0]);
  pair.Set(1u, sv[1]);
  return pair;
}

// listenUnix(path, backlog) -> fd: a SOCK_STREAM unix socket bound at path and listening (CLOEXEC, blocking).
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = IntArg(info, 1, "backlog");
  SocketAddress addr;
  if (!addr.Parse(AF_UNIX, path, 0)) throw ErrnoError(env, "bind", path, ENAMETOOLONG);
  int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sk < 0) throw ErrnoError(env, "socket", "AF_UNIX, SOCK_STREAM", errno);
  if (bind(sk, addr.sa(), addr.length) != 0) {
    int err = errno;
    close(sk);
    throw ErrnoError(env, "bind", path, err);
  }
  if (listen(sk, backlog) != 0) {
    int err = errno;
    close(sk);
    throw ErrnoError(env, "listen", path, err);
  }
  return Napi::Number::New(env, sk);
}

// Waits up to timeoutMs (< 0: forever) for `events` on fd; false with `failure` set on timeout or error.
bool WaitFor(int fd, short events, int timeoutMs, const char* what, ErrnoFailure& failure) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = poll(&p, 1, timeoutMs);
    if (n > 0) return true;
    if (n == 0) {
      failure.Set(what, FdSubject(fd) + ", " + std::to_string(timeoutMs) + " ms", ETIMEDOUT);
      return false;
    }
    if (errno != EINTR) {
      failure.Set("poll", FdSubject(fd), errno);
      return false;
    }
  }
}

// acceptSocket(fd, timeoutMs) -> Promise<fd>: the next connection (CLOEXEC, blocking); ETIMEDOUT after timeoutMs.
class AcceptWorker : public PromiseWorker {
 public:
  AcceptWorker(Napi::Env env, int fd, int timeoutMs) : PromiseWorker(env, "FerryAccept"), fd_(fd), timeoutMs_(timeoutMs) {}

 private:
  void Execute() override {
    ErrnoFailure failure;
    for (;;) {
      if (!WaitFor(fd_, POLLIN, timeoutMs_, "accept", failure)) return Fail(failure.syscall, failure.subject, failure.err);
      int sk = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (sk >= 0) {
        // Nonblocking only for the accept itself: the caller gets a blocking socket like every other one here.
        fcntl(sk, F_SETFL, fcntl(sk, F_GETFL) & ~O_NONBLOCK);
        result_ = sk;
        return;
      }
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) continue;
      return Fail("accept4", FdSubject(fd_), errno);
    }
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, result_); }
  int fd_, timeoutMs_;
  int result_ = -1;
};

Napi::Value AcceptSocket(const Napi::CallbackInfo& info) {
  auto* worker = new AcceptWorker(info.Env(), IntArg(info, 0, "fd"), IntArg(info, 1, "timeoutMs"));
  return worker->Start();
}

// connectSocket(fd, family, address, port, timeoutMs) -> Promise<void>. The fd keeps its blocking mode.
class ConnectWorker : public PromiseWorker {
 public:
  ConnectWorker(Napi::Env env, int fd, int family, std::string address, int port, int timeoutMs)
      : PromiseWorker(env, "FerryConnect"), fd_(fd), family_(family), address_(std::move(address)), port_(port), timeoutMs_(timeoutMs) {}

 private:
  void Execute() override {
    SocketAddress addr;
    std::string subject = FdSubject(fd_) + ", " + address_ + (family_ == AF_UNIX ? "" : ":" + std::to_string(port_));
    if (!addr.Parse(family_, address_, port_)) return Fail("connect", subject, EINVAL);
    int flags = fcntl(fd_, F_GETFL);
    if (flags < 0) return Fail("fcntl", subject, errno);
    fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    int rc = connect(fd_, addr.sa(), addr.length);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      ErrnoFailure failure;
      if (!WaitFor(fd_, POLLOUT, timeoutMs_, "connect", failure)) {
        fcntl(fd_, F_SETFL, flags);
        return Fail(failure.syscall, subject, failure.err);
      }
      socklen_t len = sizeof err;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    }
    fcntl(fd_, F_SETFL, flags);
    if (err != 0) Fail("connect", subject, err);
  }
  int fd_, family_;
  std::string address_;
  int port_, timeoutMs_;
};

Napi::Value ConnectSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[2].IsString()) throw Napi::TypeError::New(env, "address must be a string");
  auto* worker = new ConnectWorker(env, IntArg(info, 0, "fd"), IntArg(info, 1, "family"), info[2].As<Napi::String>().Utf8Value(),
                                   IntArg(info, 3, "port"), IntArg(info, 4, "timeoutMs"));
  return worker->Start();
}

// socketName(fd, peer) -> { family, address, port }: getsockname (or getpeername when peer is true).
Napi::Value SocketName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  bool peer = info[1].ToBoolean();
  SocketAddress addr;
  addr.length = sizeof addr.storage;
  int rc = peer ? getpeername(fd, addr.sa(), &addr.length) : getsockname(fd, addr.sa(), &addr.length);
  if (rc != 0) throw ErrnoError(env, peer ? "getpeername" : "getsockname", FdSubject(fd), errno);
  int port = 0;
  std::string text = addr.Text(&port);
  Napi::Object out = Napi::Object::New(env);
  out.Set("family", static_cast<int>(addr.storage.ss_family));
  out.Set("address", text);
  out.Set("port", port);
  return out;
}

// socketQueues(fd) -> { unread, unsent }: SIOCINQ and SIOCOUTQ (bytes not yet read here; bytes not yet taken by the
// peer: for TCP, written but not acknowledged; for unix stream sockets, the memory the peer has not read yet).
Napi::Value SocketQueues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int inq = 0, outq = 0;
  if (ioctl(fd, SIOCINQ, &inq) != 0) throw ErrnoError(env, "ioctl", FdSubject(fd) + ", SIOCINQ", errno);
  if (ioctl(fd, SIOCOUTQ, &outq) != 0) throw ErrnoError(env, "ioctl", FdSubject(fd) + ", SIOCOUTQ", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("unread", inq);
  out.Set("unsent", outq);
  return out;
}

// tcpCounters(fd) -> { bytesAcked, bytesReceived, unread, unsent } from TCP_INFO and SIOCINQ/SIOCOUTQ, read back to
// back. The kernel keeps them for the socket, whichever process holds it: a successor can tell how many bytes its
// predecessor wrote (bytesAcked + unsent) and read (bytesReceived - unread) before it died.
Napi::Value TcpCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) throw ErrnoError(env, "getsockopt", FdSubject(fd) + ", TCP_INFO", errno);
  if (len < offsetof(tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received) {
    throw ErrnoError(env, "getsockopt", FdSubject(fd) + ", TCP_INFO too short", ENOTSUP);
  }
  int inq = 0, outq = 0;
  if (ioctl(fd, SIOCINQ, &inq) != 0) throw ErrnoError(env, "ioctl", FdSubject(fd) + ", SIOCINQ", errno);
  if (ioctl(fd, SIOCOUTQ, &outq) != 0) throw ErrnoError(env, "ioctl", FdSubject(fd) + ", SIOCOUTQ", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytesAcked", Napi::BigInt::New(env, static_cast<uint64_t>(ti.tcpi_bytes_acked)));
  out.Set("bytesReceived", Napi::BigInt::New(env, static_cast<uint64_t>(ti.tcpi_bytes_received)));
  out.Set("unread", inq);
  out.Set("unsent", outq);
  out.Set("state", static_cast<int>(ti.tcpi_state));
  return out;
}

// setSendBuffer(fd, bytes): SO_SNDBUFFORCE (CAP_NET_ADMIN), falling back to SO_SNDBUF; returns the kernel's value.
Napi::Value SetSendBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int bytes = IntArg(info, 1, "bytes");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) {
    throw ErrnoError(env, "setsockopt", FdSubject(fd) + ", SO_SNDBUF", errno);
  }
  int now = 0;
  socklen_t len = sizeof now;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &len);
  return Napi::Number::New(env, now);
}

// setNoDelay(fd): TCP_NODELAY. Small requests and answers over TCP (CRIU's page requests) otherwise wait for the
// peer's delayed ACK, 40 ms, at every exchange (Nagle's algorithm).
Napi::Value SetNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int on = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) throw ErrnoError(env, "setsockopt", FdSubject(fd) + ", TCP_NODELAY", errno);
  return env.Undefined();
}

// tcpNoDelay(fd) -> whether TCP_NODELAY is set.
Napi::Value TcpNoDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int on = 0;
  socklen_t len = sizeof on;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) throw ErrnoError(env, "getsockopt", FdSubject(fd) + ", TCP_NODELAY", errno);
  return Napi::Boolean::New(env, on != 0);
}

// dupFd(fd) -> a CLOEXEC duplicate.
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0, "fd");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) throw ErrnoError(env, "fcntl", FdSubject(fd) + ", F_DUPFD_CLOEXEC", errno);
  return Napi::Number::New(env, copy);
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("streamSocketPair", Napi::Function::New(env, StreamSocketPair, "streamSocketPair"));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("acceptSocket", Napi::Function::New(env, AcceptSocket, "acceptSocket"));
  exports.Set("connectSocket", Napi::Function::New(env, ConnectSocket, "connectSocket"));
  exports.Set("socketName", Napi::Function::New(env, SocketName, "socketName"));
  exports.Set("socketQueues", Napi::Function::New(env, SocketQueues, "socketQueues"));
  exports.Set("tcpCounters", Napi::Function::New(env, TcpCounters, "tcpCounters"));
  exports.Set("setSendBuffer", Napi::Function::New(env, SetSendBuffer, "setSendBuffer"));
  exports.Set("setNoDelay", Napi::Function::New(env, SetNoDelay, "setNoDelay"));
  exports.Set("tcpNoDelay", Napi::Function::New(env, TcpNoDelay, "tcpNoDelay"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
}

}  // namespace ferry
