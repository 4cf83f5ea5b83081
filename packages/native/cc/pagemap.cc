// /proc/PID/pagemap, off the main thread, two ways:
// - pagemapRead: pread of the raw 64-bit entries, one per page (any kernel; the only source of the
//   "exclusively mapped" bit 56).
// - pagemapScan: the PAGEMAP_SCAN ioctl (Linux >= 6.7), which returns runs of pages with equal flags instead of one
//   entry per page and so stays cheap for large sparse ranges.
// Decoding the bits and choosing between the two is the facade's job (src/pagemap.ts).
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/types.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"
#include "init.h"

// Debian 12's linux-libc-dev (6.1) predates PAGEMAP_SCAN; the ABI below is from include/uapi/linux/fs.h (6.7+).
#ifndef PAGEMAP_SCAN
struct page_region {
  __u64 start;
  __u64 end;
  __u64 categories;
};
struct pm_scan_arg {
  __u64 size;
  __u64 flags;
  __u64 start;
  __u64 end;
  __u64 walk_end;
  __u64 vec;
  __u64 vec_len;
  __u64 max_pages;
  __u64 category_inverted;
  __u64 category_mask;
  __u64 category_anyof_mask;
  __u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

namespace ferry {
namespace {

constexpr uint64_t kPageSize = 4096;
constexpr size_t kRegionsPerCall = 4096;

std::string PagemapPath(pid_t pid) { return "/proc/" + std::to_string(pid) + "/pagemap"; }

class PagemapFile {
 public:
  explicit PagemapFile(pid_t pid) : path_(PagemapPath(pid)) { fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC); }
  ~PagemapFile() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PagemapReadWorker : public PromiseWorker {
 public:
  PagemapReadWorker(Napi::Env env, pid_t pid, uint64_t firstPage, uint64_t* out, size_t pageCount, Napi::Value outValue)
      : PromiseWorker(env, "FerryPagemapRead"), pid_(pid), firstPage_(firstPage), out_(out), pageCount_(pageCount) {
    outRef_ = Napi::Persistent(outValue.As<Napi::Object>());
  }

 private:
  void Execute() override {
    PagemapFile file(pid_);
    if (file.fd() < 0) return Fail("open", file.path(), errno);
    auto* dest = reinterpret_cast<uint8_t*>(out_);
    size_t want = pageCount_ * sizeof(uint64_t);
    size_t done = 0;
    while (done < want) {
      ssize_t n = pread(file.fd(), dest + done, want - done, static_cast<off_t>(firstPage_ * 8 + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail("pread", file.path() + ", page " + std::to_string(firstPage_ + done / 8), errno);
      }
      if (n == 0) break;  // past the end of the address space (or the process has exited): no pages there
      done += static_cast<size_t>(n);
    }
    std::fill(dest + done, dest + want, 0);
  }

  pid_t pid_;
  uint64_t firstPage_;
  uint64_t* out_;
  size_t pageCount_;
  Napi::ObjectReference outRef_;
};

// pagemapRead(pid, firstPage: bigint, out: BigUint64Array) -> Promise<void>: out[i] = entry of page firstPage + i.
Napi::Value PagemapRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "pid must be a number");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  uint64_t firstPage = Uint64Of(info[1], "firstPage");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "out must be a BigUint64Array");
  }
  auto out = info[2].As<Napi::BigUint64Array>();
  if (firstPage > (UINT64_MAX / 8) - out.ElementLength()) throw Napi::RangeError::New(env, "firstPage is too large");
  auto* worker = new PagemapReadWorker(env, pid, firstPage, out.Data(), out.ElementLength(), info[2]);
  return worker->Start();
}

class PagemapScanWorker : public PromiseWorker {
 public:
  PagemapScanWorker(Napi::Env env, pid_t pid, uint64_t start, uint64_t end, uint64_t returnMask)
      : PromiseWorker(env, "FerryPagemapScan"), pid_(pid), start_(start), end_(end), returnMask_(returnMask) {}

 private:
  void Execute() override {
    PagemapFile file(pid_);
    if (file.fd() < 0) return Fail("open", file.path(), errno);
    std::vector<page_region> vec(kRegionsPerCall);
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = start_;
    arg.end = end_;
    arg.vec = reinterpret_cast<uint64_t>(vec.data());
    arg.vec_len = vec.size();
    // Only pages with at least one wanted flag are reported; the rest are left at 0 by the caller, which is also
    // what the kernel would have said for them.
    arg.category_anyof_mask = returnMask_;
    arg.return_mask = returnMask_;
    while (arg.start < end_) {
      int n = ioctl(file.fd(), PAGEMAP_SCAN, &arg);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Fail("ioctl", file.path() + ", PAGEMAP_SCAN", errno);
      }
      for (int i = 0; i < n; i++) {
        regions_.push_back(vec[i].start);
        regions_.push_back(vec[i].end);
        regions_.push_back(vec[i].categories);
      }
      if (arg.walk_end <= arg.start) return Fail("ioctl", file.path() + ", PAGEMAP_SCAN made no progress", EIO);
      arg.start = arg.walk_end;
    }
  }

  // Resolves with a BigUint64Array of [start, end, categories] triples.
  Napi::Value Result(Napi::Env env) override {
    auto result = Napi::BigUint64Array::New(env, regions_.size());
    std::copy(regions_.begin(), regions_.end(), result.Data());
    return result;
  }

  pid_t pid_;
  uint64_t start_;
  uint64_t end_;
  uint64_t returnMask_;
  std::vector<uint64_t> regions_;
};

// pagemapScan(pid, start: bigint, end: bigint, returnMask: number) -> Promise<BigUint64Array>
Napi::Value PagemapScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[3].IsNumber()) throw Napi::TypeError::New(env, "pid and returnMask must be numbers");
  pid_t pid = info[0].As<Napi::Number>().Int32Value();
  uint64_t start = Uint64Of(info[1], "start");
  uint64_t end = Uint64Of(info[2], "end");
  if (start % kPageSize != 0 || end % kPageSize != 0 || end < start) {
    throw Napi::RangeError::New(env, "start and end must be page-aligned, start <= end");
  }
  uint64_t mask = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  auto* worker = new PagemapScanWorker(env, pid, start, end, mask);
  return worker->Start();
}

}  // namespace

void InitPagemap(Napi::Env env, Napi::Object exports) {
  exports.Set("pagemapRead", Napi::Function::New(env, PagemapRead, "pagemapRead"));
  exports.Set("pagemapScan", Napi::Function::New(env, PagemapScan, "pagemapScan"));
}

}  // namespace ferry
