// SOCK_SEQPACKET socketpairs with SCM_RIGHTS fd passing: the transport of CRIU's RPC (`criu swrk <fd>`).
//
// Readiness comes from a uv_poll_t on Node's own event loop rather than a dedicated reader thread: CRIU messages are
// small and rare, a nonblocking recvmsg/sendmsg of at most ~1 MiB costs microseconds, and uv_poll needs no thread,
// no locking and no thread-safe function, and stops keeping the loop alive the moment nothing is waiting. Every call
// uses MSG_DONTWAIT, so nothing here can block the main thread. Queueing and promise policy live in TypeScript
// (src/seqpacket.ts); this file only offers one-shot "tell me when readable/writable" plus nonblocking send/recv.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <vector>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// SCM_MAX_FD in the kernel: the most fds one SCM_RIGHTS message can carry.
constexpr size_t kMaxFdsPerMessage = 253;

std::string FdSubject(int fd) { return "fd=" + std::to_string(fd); }

void SetSendBuffer(int fd, int bytes) {
  // SO_SNDBUF caps one SEQPACKET message (the kernel refuses larger ones with EMSGSIZE) and is clamped to
  // net.core.wmem_max; SO_SNDBUFFORCE (CAP_NET_ADMIN) is not. Try the forced one first, keep the best we get.
  if (bytes <= 0) return;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) == 0) return;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

class SeqpacketSocket : public Napi::ObjectWrap<SeqpacketSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SeqpacketSocket",
                       {
                           InstanceAccessor<&SeqpacketSocket::GetFd>("fd"),
                           InstanceAccessor<&SeqpacketSocket::GetSendBufferBytes>("sendBufferBytes"),
                           InstanceMethod<&SeqpacketSocket::Send>("send"),
                           InstanceMethod<&SeqpacketSocket::Recv>("recv"),
                           InstanceMethod<&SeqpacketSocket::Wait>("wait"),
                           InstanceMethod<&SeqpacketSocket::Stop>("stop"),
                           InstanceMethod<&SeqpacketSocket::Close>("close"),
                       });
  }

  // new SeqpacketSocket(fd): takes ownership of fd. seqpacketPair() makes them, and src/seqpacket.ts wraps netlink fds
  // (messageSocketFromFd): every call here works on any socket that keeps message boundaries.
  explicit SeqpacketSocket(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<SeqpacketSocket>(info), context_(info.Env(), "FerrySeqpacketSocket") {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd must be a number");
    fd_ = info[0].As<Napi::Number>().Int32Value();
  }

  ~SeqpacketSocket() override { Release(); }

 private:
  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value GetSendBufferBytes(const Napi::CallbackInfo& info) {
    int bytes = 0;
    socklen_t len = sizeof bytes;
    if (getsockopt(CheckOpen(info.Env(), "getsockopt"), SOL_SOCKET, SO_SNDBUF, &bytes, &len) != 0) {
      throw ErrnoError(info.Env(), "getsockopt", FdSubject(fd_) + ", SO_SNDBUF", errno);
    }
    return Napi::Number::New(info.Env(), bytes);
  }

  int CheckOpen(Napi::Env env, const char* syscall) {
    if (fd_ < 0) throw ErrnoError(env, syscall, "fd=closed", EBADF);
    return fd_;
  }

  // send(data, fds) -> true when the whole message was queued in the kernel, false when it would block (EAGAIN).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = CheckOpen(env, "sendmsg");
    Bytes data = BytesOf(info[0], "data");
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "fds must be an array of numbers");
    Napi::Array fdArray = info[1].As<Napi::Array>();
    if (fdArray.Length() > kMaxFdsPerMessage) {
      throw Napi::RangeError::New(env, "a message carries at most 253 fds");
    }
    std::vector<int> fds(fdArray.Length());
    for (uint32_t i = 0; i < fdArray.Length(); i++) {
      Napi::Value v = fdArray.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "fds must be an array of numbers");
      fds[i] = v.As<Napi::Number>().Int32Value();
    }

    iovec iov{data.data, data.length};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds.empty()) {
      control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
      // MSG_NOSIGNAL: a dead peer is an EPIPE for the caller, not a SIGPIPE for the process.
      ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) return Napi::Boolean::New(env, true);  // SEQPACKET sends are all-or-nothing
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
      throw ErrnoError(env, "sendmsg", FdSubject(fd) + ", " + std::to_string(data.length) + " bytes, " +
                                           std::to_string(fds.size()) + " fds",
                       errno);
    }
  }

  // recv() -> { data: Buffer, fds: number[] } for a message, null at end of stream (the peer closed and everything
  // it sent was read), undefined when nothing is queued yet. Received fds are CLOEXEC and owned by the caller.
  Napi::Value Recv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = CheckOpen(env, "recvmsg");

    // Peek at the size first so that a message of any size is received whole into an exact-size Buffer. No control
    // buffer on the peek: fds are only installed by the real recvmsg below.
    ssize_t size;
    do {
      size = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    } while (size < 0 && errno == EINTR);
    if (size < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Undefined();
      throw ErrnoError(env, "recvmsg", FdSubject(fd), errno);
    }

    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(size));
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage));
    iovec iov{data.Data(), static_cast<size_t>(size)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n;
    do {
      n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Undefined();
      throw ErrnoError(env, "recvmsg", FdSubject(fd), errno);
    }

    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* p = CMSG_DATA(c);
      for (size_t i = 0; i < count; i++) {
        int received;
        memcpy(&received, p + i * sizeof(int), sizeof(int));
        fds.push_back(received);
      }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
      for (int f : fds) close(f);
      throw ErrnoError(env, "recvmsg", FdSubject(fd) + ", message or fds truncated", EMSGSIZE);
    }
    // A zero-length read without fds is end of stream: a zero-length message would read the same, which is why the
    // TypeScript facade refuses to send one.
    if (n == 0 && fds.empty()) return env.Null();

    Napi::Array fdArray = Napi::Array::New(env, fds.size());
    for (size_t i = 0; i < fds.size(); i++) fdArray.Set(static_cast<uint32_t>(i), fds[i]);
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", n == size ? data : Napi::Buffer<uint8_t>::Copy(env, data.Data(), static_cast<size_t>(n)));
    result.Set("fds", fdArray);
    return result;
  }

  // wait(events, callback): one-shot; callback(error | null, revents) once the fd is ready for `events`
  // (1 = readable, 2 = writable, as UV_READABLE/UV_WRITABLE). A new wait() replaces a pending one.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = CheckOpen(env, "uv_poll_start");
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "wait(events: number, callback: function)");
    }
    int events = info[0].As<Napi::Number>().Int32Value() & (UV_READABLE | UV_WRITABLE);
    if (poll_ == nullptr) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no uv loop");
      poll_ = new uv_poll_t;
      int rc = uv_poll_init(loop, poll_, fd);
      if (rc != 0) {
        delete poll_;
        poll_ = nullptr;
        throw ErrnoError(env, "uv_poll_init", FdSubject(fd), -rc);
      }
      poll_->data = this;
    }
    int rc = uv_poll_start(poll_, events, OnPoll);
    if (rc != 0) throw ErrnoError(env, "uv_poll_start", FdSubject(fd), -rc);
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    if (!waiting_) {
      Ref();  // the JS object must outlive a pending wait even if JS drops it
      waiting_ = true;
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopWaiting();
    return info.Env().Undefined();
  }

  // close(): idempotent. Stops and closes the poll handle before the fd, as libuv requires.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = fd_;
    StopWaiting();
    if (Release() != 0) throw ErrnoError(env, "close", FdSubject(fd), errno);
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* handle, int status, int revents) {
    auto* self = static_cast<SeqpacketSocket*>(handle->data);
    if (self == nullptr || !self->waiting_) return;
    uv_poll_stop(handle);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::FunctionReference callback = std::move(self->callback_);
    self->waiting_ = false;
    Napi::Value error = env.Null();
    if (status < 0) error = ErrnoError(env, "uv_poll", FdSubject(self->fd_), -status).Value();
    // The Ref() is dropped only after the call: the callback may be the last thing that knows about this object.
    try {
      callback.MakeCallback(env.Global(), {error, Napi::Number::New(env, revents)}, self->context_);
    } catch (const Napi::Error& e) {
      // A throwing callback is an uncaught exception in JS terms, as for any other event-loop callback.
      napi_fatal_exception(env, e.Value());
    }
    // Exactly one Unref for the Ref() taken by the wait that just fired: a wait() started inside the callback took
    // its own Ref(), and a stop() inside it found waiting_ already false.
    self->Unref();
  }

  void StopWaiting() {
    if (poll_ != nullptr) uv_poll_stop(poll_);
    if (waiting_) {
      callback_.Reset();
      waiting_ = false;
      Unref();
    }
  }

  // Closes the poll handle then the fd; returns close()'s result.
  int Release() {
    if (poll_ != nullptr) {
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (fd_ < 0) return 0;
    int fd = fd_;
    fd_ = -1;
    // Linux releases the fd even when close() reports EINTR; retrying could close someone else's fd.
    if (close(fd) != 0 && errno != EINTR) return -1;
    return 0;
  }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  bool waiting_ = false;
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
};

// seqpacketPair(sendBufferBytes) -> [SeqpacketSocket, SeqpacketSocket]. Both ends are blocking, CLOEXEC sockets:
// an end handed to a child (criu swrk) must not be O_NONBLOCK, and O_NONBLOCK on one end does not affect the other.
Napi::Value SeqpacketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sendBufferBytes = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    throw ErrnoError(env, "socketpair", "AF_UNIX, SOCK_SEQPACKET", errno);
  }
  SetSendBuffer(sv[0], sendBufferBytes);
  SetSendBuffer(sv[1], sendBufferBytes);
  Napi::Function ctor = GetAddonData(env)->seqpacketSocketClass.Value();
  Napi::Array pair = Napi::Array::New(env, 2);
  try {
    pair.Set(0u, ctor.New({Napi::Number::New(env, sv[0])}));
  } catch (...) {
    close(sv[0]);
    close(sv[1]);
    throw;
  }
  try {
    pair.Set(1u, ctor.New({Napi::Number::New(env, sv[1])}));
  } catch (...) {
    close(sv[1]);  // sv[0] now belongs to the first object
    throw;
  }
  return pair;
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0 && errno != EINTR) throw ErrnoError(env, "close", FdSubject(fd), errno);
  return env.Undefined();
}

}  // namespace

void InitSeqpacket(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = SeqpacketSocket::Define(env);
  GetAddonData(env)->seqpacketSocketClass = Napi::Persistent(cls);
  exports.Set("SeqpacketSocket", cls);
  exports.Set("seqpacketPair", Napi::Function::New(env, SeqpacketPair, "seqpacketPair"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace ferry
