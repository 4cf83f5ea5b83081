#include "errors.h"
#include "init.h"

#include <string.h>

namespace ferry {

AddonData* GetAddonData(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData(data);
  }
  return data;
}

Napi::Error ErrnoError(Napi::Env env, const char* syscall, const std::string& subject, int err) {
  std::string message = syscall;
  if (!subject.empty()) message += "(" + subject + ")";
  message += ": ";
  message += strerror(err);
  const char* name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);

  AddonData* data = GetAddonData(env);
  if (!data->errorClass.IsEmpty()) {
    Napi::Object details = Napi::Object::New(env);
    details.Set("syscall", syscall);
    details.Set("errno", err);
    details.Set("code", code);
    Napi::Object error = data->errorClass.New({Napi::String::New(env, message), details});
    return Napi::Error(env, error);
  }
  // Only reachable if the addon is used without src/load-binding.ts: same shape, plain Error.
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("name", "NativeError");
  error.Set("syscall", syscall);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", code);
  return error;
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void PromiseWorker::OnError(const Napi::Error&) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  deferred_.Reject(failure_.ToError(env).Value());
}

Bytes BytesOf(Napi::Value value, const char* what) {
  if (!value.IsTypedArray()) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a TypedArray or Buffer");
  }
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  return Bytes{static_cast<uint8_t*>(buffer.Data()) + array.ByteOffset(), array.ByteLength()};
}

int IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint64_t Uint64Of(Napi::Value value, const char* what) {
  if (!value.IsBigInt()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a bigint");
  bool lossless = false;
  uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(value.Env(), std::string(what) + " must fit in 64 unsigned bits");
  return result;
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  AddonData* data = GetAddonData(info.Env());
  // Jest gives every test file its own module registry, hence its own NativeError class: the latest one wins.
  data->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

}  // namespace ferry
