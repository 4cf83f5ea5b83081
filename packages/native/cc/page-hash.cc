// Hashing 4 KiB pages with XXH3-64 and spotting all-zero pages, on a libuv worker thread. One call handles one
// contiguous run of pages; the TypeScript facade splits a large buffer into runs and queues them in parallel, each
// writing its own slice of the shared output arrays.
#include <string.h>

#include <string>

// Header-only xxhash: the .node then has no runtime dependency on libxxhash. Default x86-64 flags give XXH3 its SSE2
// path, which every x86-64 CPU has.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

constexpr size_t kPageSize = 4096;

bool IsZeroPage(const uint8_t* page) {
  // 64 bytes per step, exit on the first non-zero line: random data stops after one cache line, and the OR of
  // eight words vectorises. memcpy keeps unaligned Buffers (pool slices) well-defined.
  for (size_t off = 0; off < kPageSize; off += 64) {
    uint64_t w[8];
    memcpy(w, page + off, sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
  }
  return true;
}

uint64_t ZeroPageHash() {
  static const uint64_t hash = [] {
    static const uint8_t zeros[kPageSize] = {};
    return XXH3_64bits(zeros, kPageSize);
  }();
  return hash;
}

class PageHashWorker : public PromiseWorker {
 public:
  PageHashWorker(Napi::Env env, const uint8_t* data, size_t firstPage, size_t pageCount, uint64_t* hashes,
                 uint8_t* zero, const Napi::CallbackInfo& info)
      : PromiseWorker(env, "FerryPageHash"),
        data_(data),
        firstPage_(firstPage),
        pageCount_(pageCount),
        hashes_(hashes),
        zero_(zero) {
    // Hold every array for as long as the worker touches it.
    keep_ = Napi::Persistent(Napi::Object::New(env));
    keep_.Set("data", info[0]);
    keep_.Set("hashes", info[3]);
    keep_.Set("zero", info[4]);
  }

 private:
  void Execute() override {
    const uint8_t* page = data_ + firstPage_ * kPageSize;
    if (hashes_ != nullptr) {
      const uint64_t zeroHash = ZeroPageHash();
      for (size_t i = firstPage_; i < firstPage_ + pageCount_; i++, page += kPageSize) {
        uint64_t h = XXH3_64bits(page, kPageSize);
        hashes_[i] = h;
        // Zero detection for free while hashing: only a page whose hash is the zero page's hash can be zero, and the
        // check that rules out a collision reads a page that is still in L1.
        if (zero_ != nullptr) zero_[i] = (h == zeroHash && IsZeroPage(page)) ? 1 : 0;
      }
    } else {
      for (size_t i = firstPage_; i < firstPage_ + pageCount_; i++, page += kPageSize) {
        zero_[i] = IsZeroPage(page) ? 1 : 0;
      }
    }
  }

  const uint8_t* data_;
  size_t firstPage_;
  size_t pageCount_;
  uint64_t* hashes_;
  uint8_t* zero_;
  Napi::ObjectReference keep_;
};

// hashPages(data, firstPage, pageCount, hashes: BigUint64Array | null, zero: Uint8Array | null) -> Promise<void>
// Fills hashes[firstPage .. firstPage+pageCount) and/or zero[...] (1 = all-zero page) for the pages of `data`.
Napi::Value HashPages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes data = BytesOf(info[0], "data");
  if (!info[1].IsNumber() || !info[2].IsNumber()) throw Napi::TypeError::New(env, "firstPage and pageCount must be numbers");
  double first = info[1].As<Napi::Number>().DoubleValue();
  double count = info[2].As<Napi::Number>().DoubleValue();
  size_t pagesInData = data.length / kPageSize;
  if (!(first >= 0 && count >= 0 && first + count <= static_cast<double>(pagesInData))) {
    throw Napi::RangeError::New(env, "pages out of range of data");
  }
  size_t firstPage = static_cast<size_t>(first);
  size_t pageCount = static_cast<size_t>(count);

  uint64_t* hashes = nullptr;
  if (!info[3].IsNull()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
      throw Napi::TypeError::New(env, "hashes must be a BigUint64Array or null");
    }
    auto array = info[3].As<Napi::BigUint64Array>();
    if (array.ElementLength() < firstPage + pageCount) throw Napi::RangeError::New(env, "hashes is too short");
    hashes = array.Data();
  }
  uint8_t* zero = nullptr;
  if (!info[4].IsNull()) {
    Bytes bytes = BytesOf(info[4], "zero");
    if (bytes.length < firstPage + pageCount) throw Napi::RangeError::New(env, "zero is too short");
    zero = bytes.data;
  }
  if (hashes == nullptr && zero == nullptr) throw Napi::TypeError::New(env, "nothing to compute");

  auto* worker = new PageHashWorker(env, data.data, firstPage, pageCount, hashes, zero, info);
  return worker->Start();
}

}  // namespace

void InitPageHash(Napi::Env env, Napi::Object exports) {
  exports.Set("hashPages", Napi::Function::New(env, HashPages, "hashPages"));
}

}  // namespace ferry
