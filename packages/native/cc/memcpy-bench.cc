// The memcpy ceiling for the benchmark (src/bench/native-bench.ts): the same copy process_vm_readv ends up doing,
// without the page pinning, measured in C++ so that the comparison is not against JS overhead. Exposed through
// src/testing.ts only, never the public API.
#include <string.h>
#include <time.h>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

// memcpyBench(dest, src) -> seconds spent copying src into dest (synchronously; a benchmark has nothing else to do).
Napi::Value MemcpyBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes dest = BytesOf(info[0], "dest");
  Bytes src = BytesOf(info[1], "src");
  if (dest.length < src.length) throw Napi::RangeError::New(env, "dest is smaller than src");
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  memcpy(dest.data, src.data, src.length);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return Napi::Number::New(env, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

}  // namespace

void InitMemcpyBench(Napi::Env env, Napi::Object exports) {
  exports.Set("memcpyBench", Napi::Function::New(env, MemcpyBench, "memcpyBench"));
}

}  // namespace ferry
