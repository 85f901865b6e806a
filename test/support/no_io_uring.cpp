// no_io_uring COMMAND [ARGS...]: runs COMMAND with io_uring refused by a
// seccomp filter, as container runtimes do (io_uring_setup, _enter and
// _register fail with EPERM). Tests run sluice's I/O suite under it to prove
// the run-time fallback.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_io_uring COMMAND [ARGS...]\n");
    return 2;
  }
  constexpr unsigned kErrno = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  sock_filter filter[] = {
      // Only x86-64 system calls are judged; anything else is allowed.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, kErrno),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
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
