// An HTTP(S) client for sluice tasks on libcurl's multi-socket interface,
// driven by the runtime's reactor: curl says which sockets to watch and when
// its timer is due; Asio waits for those events and hands them back to
// curl_multi_socket_action. Every curl call runs on one strand of the
// reactor (a multi handle is not thread-safe); a finished transfer resumes
// its task on the pool.
#pragma once

#include <curl/curl.h>

#include <asio/io_context.hpp>
#include <asio/posix/descriptor_base.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sluice/sluice.hpp>
#include <string>
#include <vector>

namespace fetch {

struct Response {
  long status = 0;          // HTTP status; 0 when no response came
  std::uint64_t bytes = 0;  // body bytes received
  std::chrono::microseconds latency{0};
  std::string error;  // empty on a transfer that completed
};

class HttpClient {
 public:
  /// Thread safety: get() may be called from any task. A runtime may hold
  /// several clients (HttpClients); each is driven on its own strand.
  /// `max_idle_connections` is how many finished connections are kept open
  /// for reuse: at least the number of transfers in flight, or curl closes
  /// and reopens connections under load.
  HttpClient(sluice::Runtime& rt, std::size_t max_idle_connections);
  /// After every get() has completed, while the runtime's reactor runs: the
  /// cleanup runs on the reactor's strand, and this waits for it.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Fetches `url`, discarding the body. Transport errors, timeouts and
  /// malformed URLs are reported in Response::error, never thrown; a
  /// cancelled task aborts the transfer and throws sluice::cancelled_error.
  sluice::Task<Response> get(std::string url, std::chrono::milliseconds timeout);

  struct Transfer;
  using Clock = std::chrono::steady_clock;

 private:
  struct Socket;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t open_socket(void* self, curlsocktype purpose, curl_sockaddr* address);
  static int close_socket(void* self, curl_socket_t fd);
  void arm_timer(Clock::time_point at);
  void watch(Socket& s);
  void arm(Socket& s, int want, int select, bool& pending,
           asio::posix::descriptor_base::wait_type wait);
  void act(curl_socket_t fd, int events);
  void collect();
  void start(Transfer& t);
  void abort(Transfer& t);
  void finish(Transfer& t, CURLcode code);

  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;  // on strand_
  // curl's timer, on strand_: `due_` is when curl wants its timeout call,
  // `armed_` when timer_ fires; armed_ <= due_ whenever both are set.
  std::optional<Clock::time_point> due_;
  std::optional<Clock::time_point> armed_;
  std::uint64_t timer_generation_ = 0;
  bool timeout_posted_ = false;
  // True until the client is destroyed; read and written on strand_ only.
  // Handlers queued on the strand hold a copy and check it first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  CURLM* multi_;                                              // used on strand_ only
  std::map<curl_socket_t, std::unique_ptr<Socket>> sockets_;  // on strand_ only
  std::uint64_t socket_serial_ = 0;                           // on strand_ only
  std::vector<CURL*> spare_easy_;                             // on strand_ only
  const std::size_t max_spare_easy_;
};

/// Several clients, one per reactor thread: a multi handle is one strand, so
/// one client never uses more than one reactor thread. Transfers are dealt
/// out in turn; each client keeps its own keep-alive connections.
class HttpClients {
 public:
  /// `lanes` clients (at least one) keeping up to `max_idle_connections`
  /// connections for reuse between them (each up to twice its share).
  HttpClients(sluice::Runtime& rt, std::size_t lanes, std::size_t max_idle_connections);

  /// Thread safety: any thread.
  HttpClient& next() noexcept {
    // relaxed: only spreads transfers; no data is published through it.
    return *clients_[next_.fetch_add(1, std::memory_order_relaxed) % clients_.size()];
  }

 private:
  std::vector<std::unique_ptr<HttpClient>> clients_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace fetch
