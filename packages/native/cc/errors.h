// Native failures become the JS `NativeError` class that src/load-binding.ts hands over through setErrorClass()
// (better-sqlite3 does the same): C++ never decides what an errno means, it only reports which call failed, on
// what, and why.
#pragma once

#include <napi.h>

#include <string>

namespace ferry {

// A NativeError for `syscall(subject): strerror(err)`, e.g. "process_vm_readv(pid=123): No such process".
Napi::Error ErrnoError(Napi::Env env, const char* syscall, const std::string& subject, int err);

// A failure seen on a worker thread, where no JS value may be created; turned into a NativeError on the main thread.
struct ErrnoFailure {
  int err = 0;
  const char* syscall = "";
  std::string subject;

  void Set(const char* call, std::string what, int e) {
    syscall = call;
    subject = std::move(what);
    err = e;
  }
  Napi::Error ToError(Napi::Env env) const { return ErrnoError(env, syscall, subject, err); }
};

// Per-environment state: the error class and the constructors C++ needs to instantiate. Kept as napi instance data
// so that worker_threads, each with their own env, do not share JS references.
struct AddonData {
  Napi::FunctionReference errorClass;
  Napi::FunctionReference seqpacketSocketClass;
};

AddonData* GetAddonData(Napi::Env env);

// Base for promise-returning AsyncWorkers: Execute() records an ErrnoFailure with Fail(); the promise then rejects
// with a NativeError, or resolves with Result() built on the main thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* resourceName)
      : Napi::AsyncWorker(env, resourceName), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  // Queues the work and returns its promise (taken first: the worker deletes itself once it has settled it).
  Napi::Promise Start() {
    Napi::Promise promise = Promise();
    Queue();
    return promise;
  }

 protected:
  void Fail(const char* syscall, std::string subject, int err) {
    failure_.Set(syscall, std::move(subject), err);
    SetError(syscall);  // makes AsyncWorker call OnError() instead of OnOK()
  }
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

 private:
  void OnOK() override;
  void OnError(const Napi::Error&) override;

  Napi::Promise::Deferred deferred_;
  ErrnoFailure failure_;
};

// Pointer to the bytes of any TypedArray, Buffer or DataView-less view, and its length in bytes.
struct Bytes {
  uint8_t* data;
  size_t length;
};
Bytes BytesOf(Napi::Value value, const char* what);

// Argument i as an int32; a TypeError naming `what` when it is not a number.
int IntArg(const Napi::CallbackInfo& info, size_t i, const char* what);

// Reads a bigint argument as uint64 and throws a TypeError naming `what` if it is not a lossless non-negative bigint.
uint64_t Uint64Of(Napi::Value value, const char* what);

}  // namespace ferry
