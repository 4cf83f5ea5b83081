// ferry_native: Linux primitives Node lacks. The TypeScript facade (src/index.ts) validates arguments, owns policy and
// wraps fds in handles; the functions registered here only perform the calls (see the Native addon section of
// STYLE.md).
#include <napi.h>

#include "init.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ferry::InitErrors(env, exports);
  ferry::InitSeqpacket(env, exports);
  ferry::InitVmRead(env, exports);
  ferry::InitPageHash(env, exports);
  ferry::InitFileGather(env, exports);
  ferry::InitPagemap(env, exports);
  ferry::InitPidfd(env, exports);
  ferry::InitNetnsSocket(env, exports);
  ferry::InitTcpRepair(env, exports);
  ferry::InitMemcpyBench(env, exports);
  ferry::InitNetns(env, exports);
  ferry::InitSockets(env, exports);
  ferry::InitUserfaultfd(env, exports);
  return exports;
}

NODE_API_MODULE(ferry_native, Init)
