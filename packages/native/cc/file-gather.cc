// Reads many scattered ranges of files into one buffer (or writes one buffer out to them) on a libuv worker: one
// pread/pwrite per range, all in one worker call. Scattered 4 KiB pages as separate fs requests from JavaScript cost a
// thread-pool round trip each, more than the copying.
#include <errno.h>
#include <unistd.h>

#include <string>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// One worker for both directions: gather reads the [fd, offset, length] ranges back to back into the buffer (pread),
// scatter writes consecutive bytes of the buffer to them (pwrite). The buffer and the triples stay referenced until
// the promise settles.
class FileRangesWorker : public PromiseWorker {
 public:
  FileRangesWorker(Napi::Env env, bool write, const uint64_t* triples, size_t count, uint8_t* buffer, const Napi::CallbackInfo& info)
      : PromiseWorker(env, write ? "FerryFileScatter" : "FerryFileGather"), write_(write), triples_(triples), count_(count), buffer_(buffer) {
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("triples", info[0]);
    keep_.Set("buffer", info[1]);
  }

 private:
  void Execute() override {
    const char* call = write_ ? "pwrite" : "pread";
    uint8_t* at = buffer_;
    for (size_t i = 0; i < count_; i++) {
      int fd = static_cast<int>(triples_[3 * i]);
      uint64_t offset = triples_[3 * i + 1];
      size_t left = static_cast<size_t>(triples_[3 * i + 2]);
      while (left > 0) {
        ssize_t n = write_ ? pwrite(fd, at, left, static_cast<off_t>(offset)) : pread(fd, at, left, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail(call, "fd=" + std::to_string(fd), errno);
        if (n == 0) return Fail(call, "fd=" + std::to_string(fd) + " offset=" + std::to_string(offset), EIO);
        at += n;
        offset += static_cast<uint64_t>(n);
        left -= static_cast<size_t>(n);
      }
    }
  }

  bool write_;
  const uint64_t* triples_;
  size_t count_;
  uint8_t* buffer_;
  Napi::ObjectReference keep_;
};

// gatherFiles / scatterFiles(triples: BigUint64Array [fd, offset, length, ...], buffer) -> Promise<void>.
Napi::Value FileRanges(const Napi::CallbackInfo& info, bool write) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "triples must be a BigUint64Array");
  }
  auto triples = info[0].As<Napi::BigUint64Array>();
  if (triples.ElementLength() % 3 != 0) throw Napi::RangeError::New(env, "triples must hold [fd, offset, length] triples");
  Bytes buffer = BytesOf(info[1], write ? "src" : "dest");
  uint64_t total = 0;
  for (size_t i = 2; i < triples.ElementLength(); i += 3) total += triples.Data()[i];
  if (total > buffer.length) throw Napi::RangeError::New(env, write ? "src is shorter than the ranges" : "dest is too short for the ranges");
  auto* worker = new FileRangesWorker(env, write, triples.Data(), triples.ElementLength() / 3, buffer.data, info);
  return worker->Start();
}

Napi::Value GatherFiles(const Napi::CallbackInfo& info) {
  return FileRanges(info, false);
}

Napi::Value ScatterFiles(const Napi::CallbackInfo& info) {
  return FileRanges(info, true);
}

}  // namespace

void InitFileGather(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherFiles", Napi::Function::New(env, GatherFiles, "gatherFiles"));
  exports.Set("scatterFiles", Napi::Function::New(env, ScatterFiles, "scatterFiles"));
}

}  // namespace ferry
