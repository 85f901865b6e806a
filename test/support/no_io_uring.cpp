// no_io_uring COMMAND [ARGS...]: runs COMMAND with io_uring refused by a
// seccomp filter, as container runtimes do (io_uring_setup, _enter and
// _register fail with EPERM). Tests run sluice's I/O suite under it to prove
// the run-time fallback.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "seccomp_no_io_uring.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_io_uring COMMAND [ARGS...]\n");
    return 2;
  }
  if (!sluice::test::refuse_io_uring()) {
    std::fprintf(stderr, "no_io_uring: cannot install the seccomp filter: %s\n",
                 std::strerror(errno));
    return 2;
  }
  // Prove the filter works before handing over.
  if (syscall(__NR_io_uring_setup, 1, nullptr) != -1 || errno != EPERM) {
    std::fprintf(stderr, "no_io_uring: io_uring_setup was not refused\n");
    return 2;
  }
  execvp(argv[1], argv + 1);
  std::fprintf(stderr, "no_io_uring: cannot run %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
