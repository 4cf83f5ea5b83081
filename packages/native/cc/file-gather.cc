// Reads many scattered ranges of files into one buffer on a libuv worker: one pread per range, all in one worker
// call. Scattered 4 KiB pages as separate fs requests from JavaScript cost a thread-pool round trip each, more than
// the copying.
#include <errno.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

class GatherWorker : public PromiseWorker {
 public:
  GatherWorker(Napi::Env env, const uint64_t* triples, size_t count, uint8_t* dest, const Napi::CallbackInfo& info)
      : PromiseWorker(env, "FerryFileGather"), triples_(triples), count_(count), dest_(dest) {
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("triples", info[0]);
    keep_.Set("dest", info[1]);
  }

 private:
  void Execute() override {
    uint8_t* out = dest_;
    for (size_t i = 0; i < count_; i++) {
      int fd = static_cast<int>(triples_[3 * i]);
      uint64_t offset = triples_[3 * i + 1];
      size_t left = static_cast<size_t>(triples_[3 * i + 2]);
      while (left > 0) {
        ssize_t n = pread(fd, out, left, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail("pread", "fd=" + std::to_string(fd), errno);
        if (n == 0) return Fail("pread", "fd=" + std::to_string(fd) + " offset=" + std::to_string(offset), EIO);
        out += n;
        offset += static_cast<uint64_t>(n);
        left -= static_cast<size_t>(n);
      }
    }
  }

  const uint64_t* triples_;
  size_t count_;
  uint8_t* dest_;
  Napi::ObjectReference keep_;
};

// gatherFiles(triples: BigUint64Array [fd, offset, length, ...], dest) -> Promise<void>: the ranges back to back.
Napi::Value GatherFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "triples must be a BigUint64Array");
  }
  auto triples = info[0].As<Napi::BigUint64Array>();
  if (triples.ElementLength() % 3 != 0) throw Napi::RangeError::New(env, "triples must hold [fd, offset, length] triples");
  Bytes dest = BytesOf(info[1], "dest");
  uint64_t total = 0;
  for (size_t i = 2; i < triples.ElementLength(); i += 3) total += triples.Data()[i];
  if (total > dest.length) throw Napi::RangeError::New(env, "dest is too short for the ranges");
  auto* worker = new GatherWorker(env, triples.Data(), triples.ElementLength() / 3, dest.data, info);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// The mirror image: writes consecutive bytes of `src` to the [fd, offset, length] ranges, one pwrite per range.
class ScatterWorker : public PromiseWorker {
 public:
  ScatterWorker(Napi::Env env, const uint64_t* triples, size_t count, const uint8_t* src, const Napi::CallbackInfo& info)
      : PromiseWorker(env, "FerryFileScatter"), triples_(triples), count_(count), src_(src) {
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("triples", info[0]);
    keep_.Set("src", info[1]);
  }

 private:
  void Execute() override {
    const uint8_t* in = src_;
    for (size_t i = 0; i < count_; i++) {
      int fd = static_cast<int>(triples_[3 * i]);
      uint64_t offset = triples_[3 * i + 1];
      size_t left = static_cast<size_t>(triples_[3 * i + 2]);
      while (left > 0) {
        ssize_t n = pwrite(fd, in, left, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail("pwrite", "fd=" + std::to_string(fd), errno);
        in += n;
        offset += static_cast<uint64_t>(n);
        left -= static_cast<size_t>(n);
      }
    }
  }

  const uint64_t* triples_;
  size_t count_;
  const uint8_t* src_;
  Napi::ObjectReference keep_;
};

// scatterFiles(triples: BigUint64Array [fd, offset, length, ...], src) -> Promise<void>
Napi::Value ScatterFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "triples must be a BigUint64Array");
  }
  auto triples = info[0].As<Napi::BigUint64Array>();
  if (triples.ElementLength() % 3 != 0) throw Napi::RangeError::New(env, "triples must hold [fd, offset, length] triples");
  Bytes src = BytesOf(info[1], "src");
  uint64_t total = 0;
  for (size_t i = 2; i < triples.ElementLength(); i += 3) total += triples.Data()[i];
  if (total > src.length) throw Napi::RangeError::New(env, "src is shorter than the ranges");
  auto* worker = new ScatterWorker(env, triples.Data(), triples.ElementLength() / 3, src.data, info);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitFileGather(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherFiles", Napi::Function::New(env, GatherFiles, "gatherFiles"));
  exports.Set("scatterFiles", Napi::Function::New(env, ScatterFiles, "scatterFiles"));
}

}  // namespace ferry
