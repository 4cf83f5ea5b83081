// Reading another process's memory with process_vm_readv, off the main thread.
//
// Ranges are read into one caller-supplied buffer, back to back, with up to IOV_MAX remote iovecs per call so that a
// region list costs few syscalls. process_vm_readv stops at the first page it cannot pin (unmapped, PROT_NONE, VM_IO,
// beyond the end of a mapped file) and returns how far it got; we then retry just that page on its own to tell "this
// page is unreadable" from "the kernel stopped early for another reason", zero-fill and record the unreadable pages,
// and carry on from the next page. An error that is not about a page (ESRCH, EPERM, ...) fails the whole read.
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"
#include "init.h"

namespace ferry {
namespace {

constexpr uint64_t kPageSize = 4096;
// The kernel silently shortens any transfer above MAX_RW_COUNT (INT_MAX rounded down to a page); staying below it
// keeps a short read meaning "a page failed".
constexpr uint64_t kMaxBytesPerCall = 1ull << 30;

bool IsPageFault(int err) { return err == EFAULT || err == EIO || err == EHWPOISON; }

class VmReadWorker : public PromiseWorker {
 public:
  VmReadWorker(Napi::Env env, pid_t pid, std::vector<uint64_t> ranges, Bytes dest, Napi::Value destValue)
      : PromiseWorker(env, "FerryVmRead"), pid_(pid), ranges_(std::move(ranges)), dest_(dest) {
    destRef_ = Napi::Persistent(destValue.As<Napi::Object>());
  }

 private:
  void Execute() override {
    const size_t count = ranges_.size() / 2;
    std::vector<iovec> remote(IOV_MAX);
    size_t range = 0;       // cursor: current range,
    uint64_t inRange = 0;   // bytes of it already done,
    uint64_t destOff = 0;   // and where its next byte goes.

    auto advance = [&](uint64_t bytes) {
      destOff += bytes;
      while (bytes > 0) {
        uint64_t left = ranges_[2 * range + 1] - inRange;
        uint64_t step = std::min(left, bytes);
        inRange += step;
        bytes -= step;
        if (inRange == ranges_[2 * range + 1]) {
          range++;
          inRange = 0;
        }
      }
    };

    while (range < count) {
      if (ranges_[2 * range + 1] == 0) {
        range++;
        continue;
      }
      size_t iovs = 0;
      uint64_t batch = 0;
      uint64_t off = inRange;
      for (size_t r = range; r < count && iovs < remote.size() && batch < kMaxBytesPerCall; r++, off = 0) {
        uint64_t len = std::min(ranges_[2 * r + 1] - off, kMaxBytesPerCall - batch);
        if (len == 0) continue;
        remote[iovs].iov_base = reinterpret_cast<void*>(ranges_[2 * r] + off);
        remote[iovs].iov_len = len;
        iovs++;
        batch += len;
      }
      iovec local{dest_.data + destOff, batch};
      ssize_t got = process_vm_readv(pid_, &local, 1, remote.data(), iovs, 0);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (!IsPageFault(errno)) {
          Fail("process_vm_readv", "pid=" + std::to_string(pid_), errno);
          return;
        }
        got = 0;
      }
      advance(static_cast<uint64_t>(got));
      if (static_cast<uint64_t>(got) == batch) continue;

      // Short: probe the page at the cursor alone.
      uint64_t addr = ranges_[2 * range] + inRange;
      uint64_t chunk = std::min(kPageSize - addr % kPageSize, ranges_[2 * range + 1] - inRange);
      iovec probeLocal{dest_.data + destOff, chunk};
      iovec probeRemote{reinterpret_cast<void*>(addr), chunk};
      ssize_t probed;
      do {
        probed = process_vm_readv(pid_, &probeLocal, 1, &probeRemote, 1, 0);
      } while (probed < 0 && errno == EINTR);
      if (probed < 0 && !IsPageFault(errno)) {
        Fail("process_vm_readv", "pid=" + std::to_string(pid_), errno);
        return;
      }
      if (probed == static_cast<ssize_t>(chunk)) {
        advance(chunk);
        continue;
      }
      memset(dest_.data + destOff, 0, chunk);
      if (!unreadable_.empty() && unreadable_[unreadable_.size() - 2] + unreadable_.back() == addr) {
        unreadable_.back() += chunk;
      } else {
        unreadable_.push_back(addr);
        unreadable_.push_back(chunk);
      }
      advance(chunk);
    }
  }

  // Resolves with a BigUint64Array of [address, length] pairs: the unreadable parts, merged, in range order.
  Napi::Value Result(Napi::Env env) override {
    auto result = Napi::BigUint64Array::New(env, unreadable_.size());
    std::copy(unreadable_.begin(), unreadable_.end(), result.Data());
    return result;
  }

  pid_t pid_;
  std::vector<uint64_t> ranges_;
  Bytes dest_;
  Napi::ObjectReference destRef_;  // keeps the destination alive while the worker writes into it
  std::vector<uint64_t> unreadable_;
};

// vmRead(pid, ranges: BigUint64Array of [address, length] pairs, dest: TypedArray) -> Promise<BigUint64Array>
Napi::Value VmRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "pid must be a number");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "ranges must be a BigUint64Array");
  }
  auto rangesArray = info[1].As<Napi::BigUint64Array>();
  if (rangesArray.ElementLength() % 2 != 0) throw Napi::RangeError::New(env, "ranges must hold address/length pairs");
  std::vector<uint64_t> ranges(rangesArray.Data(), rangesArray.Data() + rangesArray.ElementLength());
  Bytes dest = BytesOf(info[2], "dest");
  uint64_t total = 0;
  for (size_t i = 1; i < ranges.size(); i += 2) {
    if (ranges[i] > dest.length - total) throw Napi::RangeError::New(env, "dest is smaller than the ranges");
    total += ranges[i];
  }
  auto* worker = new VmReadWorker(env, pid, std::move(ranges), dest, info[2]);
  return worker->Start();
}

// pageAlignOffset(array) -> bytes from the start of array to the next page boundary. JS cannot see addresses, and
// malloc puts large buffers 16 bytes past a page boundary; the kernel copies into a misaligned destination ~1.7x
// slower (measured: 4.3 vs 7.4 GiB/s), so the facade over-allocates and slices at this offset.
Napi::Value PageAlignOffset(const Napi::CallbackInfo& info) {
  Bytes bytes = BytesOf(info[0], "array");
  uintptr_t address = reinterpret_cast<uintptr_t>(bytes.data);
  return Napi::Number::New(info.Env(), static_cast<double>((kPageSize - address % kPageSize) % kPageSize));
}

// node forks to spawn a child (libuv: clone without CLONE_VM): every writable page of this process is then shared
// copy-on-write until the child execs, and the next write to each costs a fault (~16 us here). A 64 MiB pair of read
// buffers refilled after every spawn paid ~250 ms per round. These buffers are a mapping of their own, marked
// MADV_DONTFORK (children, which exec at once, never see it) and unmapped when the Buffer is collected: the mark
// cannot outlive them on memory malloc hands out again (a child reading its argv there would crash).
Napi::Value AllocOutOfForks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "length must be a number");
  double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 1) || requested > static_cast<double>(1ull << 40) || requested != static_cast<double>(static_cast<uint64_t>(requested))) {
    throw Napi::RangeError::New(env, "length must be a positive integer");
  }
  size_t length = static_cast<size_t>(requested);
  size_t mapped = (length + kPageSize - 1) / kPageSize * kPageSize;
  void* data = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) throw ErrnoError(env, "mmap", std::to_string(mapped) + " bytes", errno);
  if (madvise(data, mapped, MADV_DONTFORK) != 0) {
    int err = errno;
    munmap(data, mapped);
    throw ErrnoError(env, "madvise", "MADV_DONTFORK", err);
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(mapped));
  return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(data), length, [mapped](Napi::Env finalizing, uint8_t* bytes) {
    munmap(bytes, mapped);
    Napi::MemoryManagement::AdjustExternalMemory(finalizing, -static_cast<int64_t>(mapped));
  });
}

}  // namespace

void InitVmRead(Napi::Env env, Napi::Object exports) {
  exports.Set("allocOutOfForks", Napi::Function::New(env, AllocOutOfForks, "allocOutOfForks"));
  exports.Set("vmRead", Napi::Function::New(env, VmRead, "vmRead"));
  exports.Set("pageAlignOffset", Napi::Function::New(env, PageAlignOffset, "pageAlignOffset"));
}

}  // namespace ferry
