#include "isolate.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace bench {
namespace {

[[noreturn]] void child_main(int fd, const std::function<std::string()>& body) {
  std::string out;
  try {
    out = body();
  } catch (const std::exception& e) {
    out = e.what();
  }
  for (std::size_t done = 0; done < out.size();) {
    auto wrote = ::write(fd, out.data() + done, out.size() - done);
    if (wrote <= 0) ::_exit(3);
    done += static_cast<std::size_t>(wrote);
  }
  std::fflush(nullptr);
  ::_exit(0);  // no static destructors: the parent owns those
}

// Reads the child's output until EOF; false if the deadline passed first.
bool read_all(int fd, std::chrono::steady_clock::time_point deadline, std::string& out) {
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    auto got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return true;
    out.append(buf, static_cast<std::size_t>(got));
  }
}

}  // namespace

std::string run_in_child(const std::function<std::string()>& body, int timeout_s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], body);
  }
  ::close(fds[1]);
  std::string out;
  bool finished =
      read_all(fds[0], std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s), out);
  ::close(fds[0]);
  if (!finished) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!finished)
    throw std::runtime_error("timeout: killed after " + std::to_string(timeout_s) + " s");
  if (WIFSIGNALED(status))
    throw std::runtime_error("crashed: signal " + std::to_string(WTERMSIG(status)) + " (" +
                             ::strsignal(WTERMSIG(status)) + ")");
  if (WEXITSTATUS(status) != 0)
    throw std::runtime_error("child exited with " + std::to_string(WEXITSTATUS(status)));
  return out;
}

}  // namespace bench
