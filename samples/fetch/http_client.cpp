#include "http_client.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <future>
#include <optional>
#include <stdexcept>
#include <stop_token>

namespace fetch {

// One request, living in the awaiting task's frame until it resumes.
struct HttpClient::Transfer {
  HttpClient* client = nullptr;
  std::string url;
  std::chrono::milliseconds timeout{0};
  CURL* easy = nullptr;
  Clock::time_point started;
  Response response;
  bool cancelled = false;
  std::atomic<bool> done{false};  // written by finish, read by abort: both on the strand
  // Set by the stop callback before it posts an abort that refers to this
  // Transfer; read by the task once the callback can no longer run.
  std::atomic<bool> abort_posted{false};
  sluice::detail::PromiseBase* waiter = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// A socket curl asked us to watch, by curl's descriptor number.
//
// A socket curl opens through open_socket is watched through a duplicate
// descriptor of our own (`watched`), registered with the reactor once, and
// closed with this entry: libcurl before 8.2 closes a socket whose connect
// did not complete (a connect timeout, an aborted transfer) itself, without
// close_socket, and reports it REMOVEd only afterwards. By then another
// thread may have been given the same number for a new socket, so no
// reactor call may name curl's number after curl stops watching it; ours
// stays ours until we close it. Such an entry (curl never read from the
// socket) goes at REMOVE, or our duplicate would keep the socket open; one
// curl has read from stays registered while the connection idles in curl's
// cache, until close_socket, so a keep-alive connection reused by the next
// transfer costs no epoll_ctl.
//
// Sockets curl did not open here (a resolver's socketpair) are watched
// under curl's number and released, never closed, at REMOVE, which curl
// reports before it closes them.
struct HttpClient::Socket {
  Socket(asio::strand<asio::io_context::executor_type>& strand, curl_socket_t curl_fd, int watched,
         bool ours, std::uint64_t id)
      : fd(curl_fd), descriptor(strand, watched), opened_here(ours), serial(id) {}
  ~Socket() {
    if (!descriptor.is_open()) {
      return;
    }
    if (opened_here) {
      std::error_code ignored;
      descriptor.close(ignored);  // our duplicate: deregisters and closes it
    } else {
      descriptor.release();  // curl's own descriptor: curl closes it
    }
  }
  curl_socket_t fd;  // curl's number, the key in sockets_
  asio::posix::stream_descriptor descriptor;
  bool opened_here;           // by open_socket: `descriptor` is our duplicate
  std::uint64_t serial;       // tells a reused descriptor number from this socket
  int what = CURL_POLL_NONE;  // what curl wants now
  bool read_from = false;     // curl asked to read it at least once: connected
  bool reading = false;       // an async_wait(read) is pending
  bool writing = false;
};

namespace {

std::size_t count_body(char*, std::size_t size, std::size_t n, void* user) {
  static_cast<Response*>(user)->bytes += size * n;
  return size * n;
}

struct CurlGlobal {
  CurlGlobal() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  }
  ~CurlGlobal() { curl_global_cleanup(); }
};

}  // namespace

HttpClient::HttpClient(sluice::Runtime& rt, std::size_t max_idle_connections)
    : strand_(asio::make_strand(rt.io_context())),
      timer_(strand_),
      max_spare_easy_(std::max<std::size_t>(max_idle_connections, 1)) {
  static CurlGlobal global;
  multi_ = curl_multi_init();
  if (multi_ == nullptr) {
    throw std::runtime_error("curl_multi_init failed");
  }
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpClient::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpClient::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  // curl's default cache holds 4 per easy handle currently added; when a
  // burst of transfers completes together that count is briefly near zero
  // and the cache evicts live keep-alive connections.
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(std::max<std::size_t>(max_idle_connections, 1)));
}

HttpClient::~HttpClient() {
  // Transfers end before the client (their tasks await them); what is left
  // are idle pooled connections, and handlers curl's timer or sockets may
  // still have queued on the strand. The cleanup runs on the strand, and
  // marks the client dead for those handlers, which hold `alive_`.
  std::promise<void> closed;
  asio::post(strand_, [this, &closed] {
    *alive_ = false;
    timer_.cancel();
    curl_multi_cleanup(multi_);
    multi_ = nullptr;
    sockets_.clear();
    for (CURL* easy : spare_easy_) {
      curl_easy_cleanup(easy);
    }
    spare_easy_.clear();
    closed.set_value();
  });
  closed.get_future().wait();  // a short wait for the reactor thread
}

int HttpClient::on_socket(CURL*, curl_socket_t fd, int what, void* self_ptr, void*) {
  auto& self = *static_cast<HttpClient*>(self_ptr);
  if (what == CURL_POLL_REMOVE) {
    if (auto it = self.sockets_.find(fd); it != self.sockets_.end()) {
      Socket& s = *it->second;
      s.what = CURL_POLL_NONE;
      s.descriptor.cancel();  // pending waits complete as aborted
      // Kept registered only while idle in curl's connection cache; see
      // Socket for why the others go now.
      if (!s.opened_here || !s.read_from) {
        self.sockets_.erase(it);
      }
    }
    return 0;
  }
  auto& slot = self.sockets_[fd];
  if (!slot) {
    slot = std::make_unique<Socket>(self.strand_, fd, fd, false, ++self.socket_serial_);
  }
  slot->what = what;
  slot->read_from = slot->read_from || (what & CURL_POLL_IN) != 0;
  self.watch(*slot);
  return 0;
}

curl_socket_t HttpClient::open_socket(void* self_ptr, curlsocktype purpose,
                                      curl_sockaddr* address) {
  auto& self = *static_cast<HttpClient*>(self_ptr);
  if (purpose != CURLSOCKTYPE_IPCXN) {
    return CURL_SOCKET_BAD;  // this client only makes outgoing connections
  }
  const curl_socket_t fd =
      ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd == CURL_SOCKET_BAD) {
    return fd;  // curl reports the failure with errno
  }
  const int watched = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (watched < 0) {
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  try {
    self.sockets_[fd] =
        std::make_unique<Socket>(self.strand_, fd, watched, true, ++self.socket_serial_);
  } catch (...) {  // registering with the reactor failed
    self.sockets_.erase(fd);
    ::close(watched);
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

int HttpClient::close_socket(void* self_ptr, curl_socket_t fd) {
  auto& self = *static_cast<HttpClient*>(self_ptr);
  if (auto it = self.sockets_.find(fd); it != self.sockets_.end()) {
    self.sockets_.erase(it);  // deregisters, cancels waits, closes our duplicate
  }
  return ::close(fd);
}

int HttpClient::on_timer(CURLM*, long timeout_ms, void* self_ptr) {
  auto& self = *static_cast<HttpClient*>(self_ptr);
  if (timeout_ms < 0) {
    self.due_.reset();  // an armed wait, if any, fires and finds nothing due
  } else if (timeout_ms == 0) {
    self.due_.reset();
    if (!self.timeout_posted_) {  // curl asks for this on every added transfer
      self.timeout_posted_ = true;
      asio::post(self.strand_, [&self, alive = self.alive_] {
        if (!*alive) {
          return;  // the client is gone (see ~HttpClient)
        }
        self.timeout_posted_ = false;
        self.act(CURL_SOCKET_TIMEOUT, 0);
      });
    }
  } else {
    self.due_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    // Re-arming moves the reactor's timerfd: a system call each time, and
    // curl moves its deadline on nearly every socket event. Only a deadline
    // earlier than the armed one re-arms; a later one waits for the armed
    // wait to fire and then re-arms (see on_timer_fired).
    if (!self.armed_ || *self.due_ < *self.armed_) {
      self.arm_timer(*self.due_);
    }
  }
  return 0;
}

void HttpClient::arm_timer(Clock::time_point at) {
  armed_ = at;
  timer_.expires_at(at);  // a wait already pending completes as aborted
  timer_.async_wait([this, alive = alive_, generation = ++timer_generation_](std::error_code ec) {
    if (ec || !*alive || generation != timer_generation_) {
      return;  // replaced by a later arm_timer, or the client is gone
    }
    armed_.reset();
    if (!due_) {
      return;
    }
    if (*due_ <= Clock::now()) {
      due_.reset();
      act(CURL_SOCKET_TIMEOUT, 0);
    } else {
      arm_timer(*due_);
    }
  });
}

// Keeps one wait pending per direction curl asked for. A wait started on a
// descriptor that is already ready completes at once, whether or not its
// edge was seen before (both of Asio's reactors check readiness when a wait
// starts: epoll by re-arming the descriptor, io_uring by a fresh poll), so
// data curl left unread is never missed.
void HttpClient::watch(Socket& s) {
  arm(s, CURL_POLL_IN, CURL_CSELECT_IN, s.reading, asio::posix::descriptor_base::wait_read);
  arm(s, CURL_POLL_OUT, CURL_CSELECT_OUT, s.writing, asio::posix::descriptor_base::wait_write);
}

void HttpClient::arm(Socket& s, int want, int select, bool& pending,
                     asio::posix::descriptor_base::wait_type wait) {
  if ((s.what & want) == 0 || pending) {
    return;
  }
  pending = true;
  const curl_socket_t fd = s.fd;
  auto ready = [this, alive = alive_, fd, serial = s.serial, select, want](std::error_code ec) {
    if (!*alive) {
      return;  // the client is gone (see ~HttpClient)
    }
    auto it = sockets_.find(fd);
    if (it == sockets_.end() || it->second->serial != serial) {
      return;  // curl closed the socket this wait was for
    }
    (want == CURL_POLL_IN ? it->second->reading : it->second->writing) = false;
    if (!ec) {
      act(fd, select);
    } else if (ec == asio::error::operation_aborted) {
      watch(*it->second);  // cancelled by a REMOVE; curl may have asked again since
    } else {
      act(fd, CURL_CSELECT_ERR);  // curl finds out what is wrong and gives up on it
    }
  };
  s.descriptor.async_wait(wait, ready);
}

void HttpClient::act(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  collect();
  if (fd != CURL_SOCKET_TIMEOUT) {
    if (auto it = sockets_.find(fd); it != sockets_.end()) {
      watch(*it->second);  // curl may still want this socket
    }
  }
}

void HttpClient::collect() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) {
      continue;
    }
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    finish(*t, msg->data.result);
  }
}

void HttpClient::start(Transfer& t) {
  t.started = Clock::now();
  if (t.cancelled) {  // stopped before it began
    finish(t, CURLE_ABORTED_BY_CALLBACK);
    return;
  }
  if (!spare_easy_.empty()) {  // reset handles keep their allocations
    t.easy = spare_easy_.back();
    spare_easy_.pop_back();
  } else {
    t.easy = curl_easy_init();
  }
  if (t.easy == nullptr) {
    t.response.error = "curl_easy_init failed";
    finish(t, CURLE_FAILED_INIT);
    return;
  }
  curl_easy_setopt(t.easy, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, &count_body);
  curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &t.response);
  curl_easy_setopt(t.easy, CURLOPT_ERRORBUFFER, t.error_buffer);
  curl_easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(t.timeout.count()));
  curl_easy_setopt(t.easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(t.easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(t.easy, CURLOPT_MAXREDIRS, 5L);
  // A URL fetcher: file://, dict:// and the like are refused, not "fetched".
  curl_easy_setopt(t.easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(t.easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(t.easy, CURLOPT_OPENSOCKETFUNCTION, &HttpClient::open_socket);
  curl_easy_setopt(t.easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(t.easy, CURLOPT_CLOSESOCKETFUNCTION, &HttpClient::close_socket);
  curl_easy_setopt(t.easy, CURLOPT_CLOSESOCKETDATA, this);
  const CURLMcode rc = curl_multi_add_handle(multi_, t.easy);
  if (rc != CURLM_OK) {
    t.response.error = curl_multi_strerror(rc);
    finish(t, CURLE_FAILED_INIT);
  }
}

void HttpClient::abort(Transfer& t) {
  if (t.done.load(std::memory_order_relaxed)) {
    return;
  }
  t.cancelled = true;
  if (t.easy != nullptr) {
    finish(t, CURLE_ABORTED_BY_CALLBACK);
  }  // else: not started yet; start() sees `cancelled`
}

void HttpClient::finish(Transfer& t, CURLcode code) {
  if (t.easy != nullptr) {
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &t.response.status);
    curl_multi_remove_handle(multi_, t.easy);
    if (spare_easy_.size() < max_spare_easy_) {
      curl_easy_reset(t.easy);
      spare_easy_.push_back(t.easy);
    } else {
      curl_easy_cleanup(t.easy);
    }
    t.easy = nullptr;
  }
  if (code != CURLE_OK && t.response.error.empty()) {
    t.response.error = t.error_buffer[0] != '\0' ? t.error_buffer : curl_easy_strerror(code);
  }
  t.response.latency =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t.started);
  t.done.store(true, std::memory_order_release);
  t.waiter->schedule();
}

namespace {

struct TransferAwaiter {
  HttpClient::Transfer& t;
  asio::strand<asio::io_context::executor_type>& strand;
  void (HttpClient::*start)(HttpClient::Transfer&);

  static bool await_ready() noexcept { return false; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    t.waiter = &h.promise();
    asio::post(strand, [this] { (t.client->*start)(t); });
  }
  static void await_resume() noexcept {}
};

// Resumes the task after everything already queued on the strand ran. Not
// cancellable on purpose: it is what makes a queued abort safe.
struct DrainAwaiter {
  asio::strand<asio::io_context::executor_type>& strand;
  static bool await_ready() noexcept { return false; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    auto* waiter = &h.promise();
    asio::post(strand, [waiter] { waiter->schedule(); });
  }
  static void await_resume() noexcept {}
};

}  // namespace

sluice::Task<Response> HttpClient::get(std::string url, std::chrono::milliseconds timeout) {
  Transfer t;
  t.client = this;
  t.url = std::move(url);
  t.timeout = timeout;
  // A stop of this task aborts the transfer, on the strand like every curl call.
  std::stop_token token = co_await sluice::this_task::stop_token();
  if (token.stop_requested()) {
    throw sluice::cancelled_error();
  }
  {
    auto on_stop = [this, &t] {
      t.abort_posted.store(true, std::memory_order_relaxed);
      asio::post(strand_, [this, &t] { abort(t); });
    };
    std::stop_callback<decltype(on_stop)> link(token, on_stop);
    co_await TransferAwaiter{t, strand_, &HttpClient::start};
  }
  // The stop callback is gone (its destructor waits for a running one), but
  // an abort it posted may still be queued: then let the strand drain past
  // it before the Transfer goes out of scope. Usually none was posted, and
  // the round trip through the reactor is saved.
  if (t.abort_posted.load(std::memory_order_relaxed)) {
    co_await DrainAwaiter{strand_};
  }
  if (t.cancelled) {
    throw sluice::cancelled_error();
  }
  co_return t.response;
}

HttpClients::HttpClients(sluice::Runtime& rt, std::size_t lanes, std::size_t max_idle_connections) {
  lanes = std::max<std::size_t>(lanes, 1);
  // Each client carries about 1/lanes of the transfers: room for twice its
  // share, so the lanes together keep at most about twice the total open.
  const std::size_t per_lane =
      std::min(max_idle_connections, (2 * max_idle_connections + lanes - 1) / lanes);
  clients_.reserve(lanes);
  for (std::size_t i = 0; i < lanes; ++i) {
    clients_.push_back(std::make_unique<HttpClient>(rt, per_lane));
  }
}

}  // namespace fetch
