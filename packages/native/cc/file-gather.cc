// Reads many scattered ranges of a file into one buffer on a libuv worker: one pread per range, all in one worker
// call. Scattered 4 KiB pages of a memory dump as separate fs requests from JavaScript cost a thread-pool round trip
// each, more than the copying.
#include <errno.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

class GatherWorker : public PromiseWorker {
 public:
  GatherWorker(Napi::Env env, int fd, const uint64_t* pairs, size_t pairCount, uint8_t* dest, const Napi::CallbackInfo& info)
      : PromiseWorker(env, "FerryFileGather"), fd_(fd), pairs_(pairs), pairCount_(pairCount), dest_(dest) {
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("pairs", info[1]);
    keep_.Set("dest", info[2]);
  }

 private:
  void Execute() override {
    uint8_t* out = dest_;
    for (size_t i = 0; i < pairCount_; i++) {
      uint64_t offset = pairs_[2 * i];
      size_t left = static_cast<size_t>(pairs_[2 * i + 1]);
      while (left > 0) {
        ssize_t n = pread(fd_, out, left, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail("pread", "fd=" + std::to_string(fd_), errno);
        if (n == 0) return Fail("pread", "fd=" + std::to_string(fd_) + " offset=" + std::to_string(offset), EIO);
        out += n;
        offset += static_cast<uint64_t>(n);
        left -= static_cast<size_t>(n);
      }
    }
  }

  int fd_;
  const uint64_t* pairs_;
  size_t pairCount_;
  uint8_t* dest_;
  Napi::ObjectReference keep_;
};

// gatherFile(fd, pairs: BigUint64Array [offset, length, ...], dest) -> Promise<void>: the ranges back to back.
Napi::Value GatherFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "pairs must be a BigUint64Array");
  }
  auto pairs = info[1].As<Napi::BigUint64Array>();
  if (pairs.ElementLength() % 2 != 0) throw Napi::RangeError::New(env, "pairs must hold [offset, length] pairs");
  Bytes dest = BytesOf(info[2], "dest");
  uint64_t total = 0;
  for (size_t i = 1; i < pairs.ElementLength(); i += 2) total += pairs.Data()[i];
  if (total > dest.length) throw Napi::RangeError::New(env, "dest is too short for the ranges");
  auto* worker = new GatherWorker(env, fd, pairs.Data(), pairs.ElementLength() / 2, dest.data, info);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitFileGather(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherFile", Napi::Function::New(env, GatherFile, "gatherFile"));
}

}  // namespace ferry
