// TCP sockets: how they end. resetOnClose makes any close of a socket (the death of its process included) a reset.
// TCP repair mode (TCP_REPAIR) on another process's socket: a socket left in repair mode (by a checkpointing tool
// that was killed before it could take it out) sends nothing, and the connection dies once traffic flows again.
// leaveTcpRepair takes the socket out of repair mode through a copy of its fd (pidfd_getfd), as the tool would have.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace ferry {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// leaveTcpRepair(pid, fd) -> true when the socket was in repair mode and left it; false when it was not, is not a
// TCP socket, or is gone (the process exited or closed the fd meanwhile).
Napi::Value LeaveTcpRepair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "pid and fd must be numbers");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  int target = info[1].As<Napi::Number>().Int32Value();
  const std::string where = "pid=" + std::to_string(pid) + ", fd=" + std::to_string(target);
  Fd pidfd;
  pidfd.fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd.fd < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    throw ErrnoError(env, "pidfd_open", where, errno);
  }
  Fd sock;
  sock.fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.fd, target, 0));
  if (sock.fd < 0) {
    if (errno == ESRCH || errno == EBADF) return Napi::Boolean::New(env, false);
    throw ErrnoError(env, "pidfd_getfd", where, errno);
  }
  int domain = 0;
  int type = 0;
  int protocol = 0;
  socklen_t len = sizeof(int);
  if (getsockopt(sock.fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return Napi::Boolean::New(env, false);  // not a socket
  len = sizeof(int);
  if (getsockopt(sock.fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return Napi::Boolean::New(env, false);
  len = sizeof(int);
  if (getsockopt(sock.fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0) return Napi::Boolean::New(env, false);
  if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM || protocol != IPPROTO_TCP) return Napi::Boolean::New(env, false);
  int repair = 0;
  len = sizeof(int);
  if (getsockopt(sock.fd, SOL_TCP, TCP_REPAIR, &repair, &len) != 0) throw ErrnoError(env, "getsockopt(TCP_REPAIR)", where, errno);
  if (repair == 0) return Napi::Boolean::New(env, false);
  int off = 0;  // TCP_REPAIR_OFF: leave repair mode and send a window probe, so the peer hears from this end again
  if (setsockopt(sock.fd, SOL_TCP, TCP_REPAIR, &off, sizeof(off)) != 0) throw ErrnoError(env, "setsockopt(TCP_REPAIR, 0)", where, errno);
  return Napi::Boolean::New(env, true);
}

// resetOnClose(fd) -> undefined: SO_LINGER {on, 0}, so that closing the socket, even by the death of this process,
// sends a reset instead of a clean end.
Napi::Value ResetOnClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct linger l = {1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) != 0) throw ErrnoError(env, "setsockopt(SO_LINGER)", "fd=" + std::to_string(fd), errno);
  return env.Undefined();
}

}  // namespace

void InitTcpRepair(Napi::Env env, Napi::Object exports) {
  exports.Set("leaveTcpRepair", Napi::Function::New(env, LeaveTcpRepair, "leaveTcpRepair"));
  exports.Set("resetOnClose", Napi::Function::New(env, ResetOnClose, "resetOnClose"));
}

}  // namespace ferry
