// sluice-serve end to end: the sample is started as a process on a free
// loopback port and driven by curl, wrk and raw sockets. Every wait here
// has a limit, so a hung server fails the test instead of stalling it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>  // mkdtemp
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "deadline.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

extern char** environ;

namespace {

constexpr const char* kServe = SLUICE_SERVE_SAMPLE;
constexpr std::string_view kCurl = SLUICE_CURL_PROGRAM;
constexpr std::string_view kWrk = SLUICE_WRK_PROGRAM;

bool found(std::string_view program) { return !program.empty() && !program.ends_with("NOTFOUND"); }

milliseconds left_until(Clock::time_point end) {
  return std::max(0ms, std::chrono::duration_cast<milliseconds>(end - Clock::now()));
}

// A child process with its stdout on a pipe; killed if still running when
// destroyed (a failed REQUIRE must not leave a server behind).
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_ = fds[0];
    INFO("spawning " << args[0]);
    REQUIRE(rc == 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }

  [[nodiscard]] int out() const { return out_; }
  void signal(int sig) const { REQUIRE(kill(pid_, sig) == 0); }

  /// Its wait status once it has exited; nothing if it is still running
  /// after `limit`.
  std::optional<int> wait(milliseconds limit) {
    if (!status_) {
      int status = 0;
      if (sluice::test::eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; },
                                   limit)) {
        status_ = status;
      }
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::optional<int> status_;
};

// Appends what `fd` has to `out` until `done(out)`, end of file, or `limit`.
template <class Done>
bool read_until(int fd, std::string& out, Done done, milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (!done(out)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left_until(end).count())) <= 0) {
      return false;  // out of time
    }
    char buf[4096];
    const auto n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      return done(out);
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

struct Finished {
  int status = -1;  // exit status, or -1 (killed, timed out)
  std::string out;
};

// Runs a program to completion, killing it after `limit`.
Finished run(const std::vector<std::string>& args, milliseconds limit) {
  const auto end = Clock::now() + limit;
  Child c(args);
  Finished f;
  read_until(
      c.out(), f.out, [](const std::string&) { return false; }, limit);
  if (const auto status = c.wait(left_until(end) + 100ms); status && WIFEXITED(*status)) {
    f.status = WEXITSTATUS(*status);
  }
  return f;
}

// sluice-serve on a free port (--port 0, --port-file), killed if a test
// leaves it running.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> extra = {})
      : dir_(make_dir()), port_file_(dir_ + "/port"), child_(arguments(port_file_, extra)) {
    bool died = false;
    const bool written = sluice::test::eventually(
        [&] {
          std::ifstream in(port_file_);
          died = !(in >> port_) && child_.wait(0ms).has_value();
          return port_ > 0 || died;
        },
        30s);
    REQUIRE_FALSE(died);
    REQUIRE(written);
    REQUIRE(read_until(
        child_.out(), out_, [](const std::string& s) { return s.find('\n') != s.npos; }, 30s));
    REQUIRE(out_ == "listening on 127.0.0.1:" + std::to_string(port_) + "\n");
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() {
    unlink(port_file_.c_str());
    rmdir(dir_.c_str());
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  void signal(int sig) const { child_.signal(sig); }

  /// Its wait status once it exits within `limit` (then all its stdout is read).
  std::optional<int> wait(milliseconds limit) {
    const auto status = child_.wait(limit);
    if (status) {
      read_until(
          child_.out(), out_, [](const std::string&) { return false; }, 2s);
    }
    return status;
  }
  [[nodiscard]] const std::string& output() const { return out_; }

  /// SIGTERM, then a clean exit: a sanitizer report (halt_on_error) or a
  /// crash during the test shows up here.
  void stop() {
    signal(SIGTERM);
    const auto status = wait(20s);
    INFO(out_);
    REQUIRE(status);
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK_THAT(out_, Catch::Contains("shutdown "));
  }

 private:
  static std::string make_dir() {
    char dir[] = "/tmp/sluice-serve-test.XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    return dir;
  }
  static std::vector<std::string> arguments(const std::string& port_file,
                                            const std::vector<std::string>& extra) {
    std::vector<std::string> args = {kServe,    "--port",    "0", "--port-file",
                                     port_file, "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::string dir_;
  std::string port_file_;
  Child child_;
  int port_ = 0;
  std::string out_;
};

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// A raw TCP client, for what curl cannot show: pipelining on one
// connection, a client that stalls mid-request, the server closing.
class Client {
 public:
  explicit Client(int port, int receive_buffer = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { close(fd_); }

  void send(std::string_view data) const {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// The next response (framed by Content-Length; `head`: the response to
  /// a HEAD request, with no body), or nothing after `limit` or at end of
  /// stream.
  std::optional<HttpResponse> response(milliseconds limit, bool head = false) {
    const auto end = Clock::now() + limit;
    auto header_end = [](const std::string& s) { return s.find("\r\n\r\n") != s.npos; };
    if (!read_until(fd_, buffer_, header_end, limit)) {
      return std::nullopt;
    }
    HttpResponse r;
    const auto split = buffer_.find("\r\n\r\n") + 4;
    r.headers = buffer_.substr(0, split);
    std::smatch m;
    if (!std::regex_search(r.headers, m, std::regex(R"(^HTTP/1\.1 (\d{3}) )"))) {
      return std::nullopt;
    }
    r.status = std::stoi(m[1]);
    std::size_t length = 0;
    if (std::regex_search(r.headers, m, std::regex(R"(Content-Length: (\d+)\r\n)"))) {
      length = std::stoul(m[1]);
    }
    if (head) {
      length = 0;  // a HEAD response announces a body it does not send
    }
    buffer_.erase(0, split);
    auto have_body = [&](const std::string& s) { return s.size() >= length; };
    if (!read_until(fd_, buffer_, have_body, left_until(end))) {
      return std::nullopt;
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }

  /// True once the server closes the connection within `limit` (nothing
  /// else arriving first).
  bool closed_by_server(milliseconds limit) {
    std::string extra;
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left_until(end).count())) <= 0) {
        return false;
      }
      char buf[4096];
      const auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        return buffer_.empty() && extra.empty();
      }
      extra.append(buf, static_cast<std::size_t>(n));
    }
    return false;
  }

  /// Reads (and counts) everything until the server closes.
  std::size_t drain(milliseconds limit) {
    std::size_t total = buffer_.size();
    buffer_.clear();
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left_until(end).count())) <= 0) {
        break;
      }
      char buf[64 * 1024];
      const auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        break;
      }
      total += static_cast<std::size_t>(n);
    }
    return total;
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

const std::string kGet = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";

}  // namespace

TEST_CASE("sluice-serve: --help exits 0, bad options exit 2", "[samples][serve]") {
  const auto help = run({kServe, "--help"}, 20s);
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("--max-pending"));
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--bogus"},
                                              {"--port", "70000"},
                                              {"--max-pending", "0"},
                                              {"--body-size", "x"},
                                              {"--threads"},
                                              {"--host", "192.0.2.1"},
                                              {"--host", "nonsense"},
                                              {"--body-size", "67108865"}}) {
    std::vector<std::string> args = {kServe};
    args.insert(args.end(), bad.begin(), bad.end());
    INFO(bad.front());
    CHECK(run(args, 20s).status == 2);
  }
}

TEST_CASE("sluice-serve: curl gets /, /bytes/N, 404 and /metrics", "[samples][serve]") {
  INFO("curl: " << kCurl);
  REQUIRE(found(kCurl));
  ServeProcess serve({"--body-size", "4321"});
  const std::string curl(kCurl);
  auto status_and_size = [&](const std::string& path, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {curl,        "-s", "-o",
                                     "/dev/null", "-w", "%{http_code} %{size_download}"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(serve.url(path));
    const auto f = run(args, 20s);
    CHECK(f.status == 0);
    return f.out;
  };
  CHECK(status_and_size("/") == "200 4321");
  CHECK(status_and_size("/bytes/1000") == "200 1000");
  CHECK(status_and_size("/bytes/0") == "200 0");
  CHECK(status_and_size("/nope") == "404 10");
  CHECK(status_and_size("/", {"-X", "DELETE"}).starts_with("405 "));
  CHECK(status_and_size("/bytes/1000", {"-I"}) == "200 0");  // HEAD: no body

  // A response is counted once its write completes, which may be a moment
  // after curl has it: ask again until the 404 shows.
  Finished metrics;
  sluice::test::eventually(
      [&] {
        metrics =
            run({curl, "-s", "-w", "\n%{http_code} %{content_type}", serve.url("/metrics")}, 20s);
        return metrics.out.find("sluice_serve_requests_total{code=\"404\"} 1\n") !=
               std::string::npos;
      },
      10s);
  CHECK(metrics.status == 0);
  CHECK_THAT(metrics.out, Catch::Contains("sluice_tasks_total{outcome=\"completed\"}"));
  CHECK_THAT(metrics.out, Catch::Contains("sluice_serve_requests_total{code=\"404\"} 1\n"));
  CHECK_THAT(metrics.out, Catch::Contains("sluice_serve_requests_total{code=\"405\"} 1\n"));
  CHECK_THAT(metrics.out, Catch::Contains("# TYPE sluice_serve_connections_open gauge\n"));
  CHECK_THAT(metrics.out, Catch::Contains("sluice_serve_bytes_sent_total "));
  CHECK_THAT(metrics.out, Catch::EndsWith("\n200 text/plain; version=0.0.4"));
  serve.stop();
}

TEST_CASE("sluice-serve: pipelined keep-alive requests on one connection", "[samples][serve]") {
  ServeProcess serve;
  Client c(serve.port());
  // Three requests in one segment: three responses, in order, and the
  // connection stays open.
  c.send(
      "GET /bytes/10 HTTP/1.1\r\nHost: t\r\n\r\n"
      "HEAD /bytes/20 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto first = c.response(10s);
  const auto second = c.response(10s, /*head=*/true);
  const auto third = c.response(10s);
  REQUIRE(first);
  REQUIRE(second);
  REQUIRE(third);
  CHECK(first->status == 200);
  CHECK(first->body.size() == 10);
  CHECK(second->status == 200);
  CHECK_THAT(second->headers, Catch::Contains("Content-Length: 20\r\n"));
  CHECK(third->status == 404);
  CHECK_FALSE(c.closed_by_server(200ms));

  // Connection: close is honoured after its response.
  c.send("GET /bytes/5 HTTP/1.1\r\nConnection: close\r\n\r\n");
  const auto last = c.response(10s);
  REQUIRE(last);
  CHECK(last->body == "abcde");
  CHECK_THAT(last->headers, Catch::Contains("Connection: close\r\n"));
  CHECK(c.closed_by_server(10s));
  serve.stop();
}

TEST_CASE("sluice-serve: HTTP/1.0 closes unless keep-alive is asked for", "[samples][serve]") {
  ServeProcess serve;
  Client once(serve.port());
  once.send("GET /bytes/3 HTTP/1.0\r\n\r\n");
  REQUIRE(once.response(10s));
  CHECK(once.closed_by_server(10s));

  Client kept(serve.port());
  kept.send("GET /bytes/3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const auto r = kept.response(10s);
  REQUIRE(r);
  CHECK_THAT(r->headers, Catch::Contains("Connection: keep-alive\r\n"));
  CHECK_FALSE(kept.closed_by_server(200ms));
  serve.stop();
}

TEST_CASE("sluice-serve: a malformed request gets 400, then the connection closes",
          "[samples][serve]") {
  ServeProcess serve;
  Client c(serve.port());
  c.send("GET /bytes/3 HTTP/1.1\r\n\r\nNOT HTTP AT ALL\r\n\r\n");
  const auto ok = c.response(10s);
  const auto rejected = c.response(10s);
  REQUIRE(ok);
  REQUIRE(rejected);
  CHECK(ok->status == 200);
  CHECK(rejected->status == 400);
  CHECK(c.closed_by_server(10s));
  serve.stop();
}

TEST_CASE("sluice-serve: a request split over many segments", "[samples][serve]") {
  ServeProcess serve;
  Client c(serve.port());
  for (const std::string_view piece :
       {"GE", "T /byt", "es/7 HTTP/1.1\r\nHo", "st: t\r\n", "\r\n"}) {
    c.send(piece);
    std::this_thread::sleep_for(20ms);
  }
  const auto r = c.response(10s);
  REQUIRE(r);
  CHECK(r->body.size() == 7);
  serve.stop();
}

TEST_CASE("sluice-serve: wrk completes with no socket errors", "[samples][serve]") {
  if (!found(kWrk)) {
    WARN("wrk is not installed: skipping the load test");
    return;
  }
  ServeProcess serve;
  const auto f = run({std::string(kWrk), "-t1", "-c16", "-d1s", serve.url("/")}, 60s);
  INFO(f.out);
  CHECK(f.status == 0);
  std::smatch m;
  REQUIRE(std::regex_search(f.out, m, std::regex(R"((\d+) requests in)")));
  CHECK(std::stoull(m[1]) > 0);
  CHECK_THAT(f.out, !Catch::Contains("Socket errors"));
  CHECK_THAT(f.out, !Catch::Contains("Non-2xx"));
  serve.stop();
}

TEST_CASE("sluice-serve: at --max-pending the next connection waits", "[samples][serve]") {
  ServeProcess serve({"--max-pending", "1"});
  std::optional<Client> holder;
  holder.emplace(serve.port());
  holder->send(kGet);
  REQUIRE(holder->response(10s));  // an idle keep-alive connection holds the only slot

  Client waiting(serve.port());  // the kernel's backlog completes the handshake
  waiting.send(kGet);
  CHECK_FALSE(waiting.response(300ms));  // not accepted while the slot is held
  holder.reset();
  const auto r = waiting.response(10s);
  REQUIRE(r);
  CHECK(r->status == 200);
  serve.stop();
}

TEST_CASE("sluice-serve: SIGTERM closes an idle keep-alive connection at once",
          "[samples][serve]") {
  constexpr auto deadline = 3000ms;
  ServeProcess serve({"--deadline-ms", std::to_string(deadline.count())});
  Client idle(serve.port());
  idle.send(kGet);
  REQUIRE(idle.response(10s));
  std::this_thread::sleep_for(100ms);  // back to waiting for a request

  const auto sent = Clock::now();
  serve.signal(SIGTERM);
  CHECK(idle.closed_by_server(deadline + 2s));
  const auto status = serve.wait(deadline + 2s);
  const auto took = Clock::now() - sent;
  INFO(serve.output());
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(took < deadline);  // idle connections do not wait for the deadline
  CHECK_THAT(serve.output(), Catch::Contains("signal 15: stopped accepting"));
  CHECK_THAT(serve.output(),
             Catch::Contains("shutdown clean: requests=1 connections=1 closed_idle=1 cancelled=0"));
}

TEST_CASE("sluice-serve: SIGTERM cancels a client stuck mid-request at the deadline",
          "[samples][serve]") {
  constexpr auto deadline = 1000ms;
  ServeProcess serve({"--deadline-ms", std::to_string(deadline.count())});
  Client stuck(serve.port());
  stuck.send("GET / HTTP/1.1\r\nHost: t\r\n");  // the blank line never comes
  std::this_thread::sleep_for(300ms);           // the server has read it

  const auto sent = Clock::now();
  serve.signal(SIGTERM);
  const auto status = serve.wait(deadline + 2s);
  const auto took = Clock::now() - sent;
  INFO(serve.output());
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(took >= deadline - 100ms);  // a busy connection gets the whole deadline
  CHECK(stuck.closed_by_server(1s));
  CHECK_THAT(serve.output(), Catch::Contains("shutdown after cancelling: requests=0 "
                                             "connections=1 closed_idle=0 cancelled=1"));
}

TEST_CASE("sluice-serve: SIGTERM lets a response in flight finish", "[samples][serve]") {
  constexpr auto deadline = 10'000ms;
  constexpr std::size_t size = std::size_t{64} << 20;
  ServeProcess serve({"--deadline-ms", std::to_string(deadline.count())});
  Client reader(serve.port(), /*receive_buffer=*/64 * 1024);
  reader.send("GET /bytes/" + std::to_string(size) + " HTTP/1.1\r\nHost: t\r\n\r\n");
  // Nothing read yet: the server is blocked mid-write when the signal comes.
  std::this_thread::sleep_for(300ms);

  const auto sent = Clock::now();
  serve.signal(SIGTERM);
  std::this_thread::sleep_for(200ms);
  const std::size_t received = reader.drain(deadline + 2s);
  const auto status = serve.wait(deadline + 2s);
  INFO(serve.output());
  REQUIRE(status);
  REQUIRE(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(Clock::now() - sent < deadline);
  CHECK(received > size);  // the whole body, after its headers
  CHECK(received < size + 200);
  CHECK_THAT(serve.output(), Catch::Contains("shutdown clean: requests=1 connections=1"));
}
