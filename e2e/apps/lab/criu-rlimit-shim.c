/*
 * Lab-only: lets CRIU read the rlimits of tasks that run as another user on a host whose root lacks
 * CAP_SYS_RESOURCE (the project's sandbox VMs: CapBnd has no bit 24). CRIU 4.2.1 reads each task's limits with
 * prlimit64(pid, res, NULL, &old), which the kernel refuses (EPERM) without that capability unless the caller's
 * uids and gids equal the task's; /proc/PID/limits shows the same values to anyone. This preload answers exactly
 * that read, after the kernel refused it, from /proc/PID/limits, and changes nothing else: every other syscall,
 * and every prlimit64 that sets a limit, goes to the kernel untouched. A normal host never needs it
 * (docs/compatibility.md). Loaded with `ld.so --preload`, so nothing CRIU execs inherits it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>

/* "Max open files            1024                 1048576              files": name in 26 columns, then soft, hard. */
static int limits_from_proc(pid_t pid, int resource, struct rlimit64 *out) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  int row = -1, found = -1;
  while (fgets(line, sizeof(line), f)) {
    if (row++ < 0) continue; /* header */
    if (row - 1 != resource) continue;
    char soft[32], hard[32];
    if (strlen(line) > 26 && sscanf(line + 26, "%31s %31s", soft, hard) == 2) {
      out->rlim_cur = strcmp(soft, "unlimited") == 0 ? RLIM64_INFINITY : strtoull(soft, NULL, 10);
      out->rlim_max = strcmp(hard, "unlimited") == 0 ? RLIM64_INFINITY : strtoull(hard, NULL, 10);
      found = 0;
    }
    break;
  }
  fclose(f);
  return found;
}

long syscall(long number, ...) {
  static long (*real)(long, ...);
  va_list ap;
  long a[6];
  va_start(ap, number);
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  long r = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (number == SYS_prlimit64 && r == -1 && errno == EPERM && a[0] > 0 && a[2] == 0 && a[3] != 0) {
    if (limits_from_proc((pid_t)a[0], (int)a[1], (struct rlimit64 *)a[3]) == 0) {
      errno = 0;
      return 0;
    }
    errno = EPERM;
  }
  return r;
}
