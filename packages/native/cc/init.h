// One Init per file, each adding its own exports; cc/addon.cc calls them all.
#pragma once

#include <napi.h>

namespace ferry {
void InitErrors(Napi::Env env, Napi::Object exports);
void InitSeqpacket(Napi::Env env, Napi::Object exports);
void InitVmRead(Napi::Env env, Napi::Object exports);
void InitPageHash(Napi::Env env, Napi::Object exports);
void InitFileGather(Napi::Env env, Napi::Object exports);
void InitPagemap(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitNetnsSocket(Napi::Env env, Napi::Object exports);
void InitTcpRepair(Napi::Env env, Napi::Object exports);
void InitMemcpyBench(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitUserfaultfd(Napi::Env env, Napi::Object exports);
}  // namespace ferry
