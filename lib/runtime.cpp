#include "sluice/runtime.hpp"

#include <pthread.h>

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <condition_variable>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "deadlines.hpp"
#include "io/file_ring.hpp"
#include "log.hpp"
#include "sched/pool.hpp"
#include "sluice/file.hpp"

namespace sluice {
namespace {

using std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;

std::size_t cores() noexcept { return std::max(1U, std::thread::hardware_concurrency()); }

// More workers than this only add contention and memory; 0 means all cores.
std::size_t worker_count(std::size_t requested) {
  const std::size_t cap = 16 * cores() + 64;
  if (requested == 0) {
    return cores();
  }
  if (requested > cap) {
    detail::log().warn("Config::threads = {} is far above the {} cores; capped at {}", requested,
                       cores(), cap);
    return cap;
  }
  return requested;
}

const Config& validate(const Config& c) {
  if (c.max_pending && *c.max_pending == 0) {
    throw std::invalid_argument("sluice::Config::max_pending must be at least 1");
  }
  if (c.task_timeout && *c.task_timeout <= nanoseconds::zero()) {
    throw std::invalid_argument("sluice::Config::task_timeout must be > 0");
  }
  if (c.shutdown_grace < nanoseconds::zero()) {
    throw std::invalid_argument("sluice::Config::shutdown_grace must be >= 0");
  }
#if defined(SLUICE_IO_URING_ONLY)
  // Asio is built without epoll here: its reactor is io_uring or nothing.
  if (!io_uring_available()) {
    throw std::runtime_error(
        "sluice::Runtime: this build puts all I/O on io_uring (SLUICE_IO_URING_ONLY, no epoll "
        "fallback), but io_uring is not available in this process (refused by the kernel, "
        "or disabled with SLUICE_DISABLE_IO_URING); rebuild without -DSLUICE_IO_URING_ONLY=ON "
        "to fall back");
  }
#endif
  return c;
}

std::uint64_t event(const detail::Pool::Counters& c, detail::Event e) {
  return c.events[static_cast<std::size_t>(e)];
}

}  // namespace

Config Config::cpu_bound() noexcept { return Config{.threads = cores()}; }

Config Config::io_bound() noexcept { return Config{.threads = 2 * cores()}; }

struct Runtime::Impl {
  explicit Impl(const Config& c)
      : config(validate(c)),
        pool(detail::Pool::Options{.threads = worker_count(config.threads),
                                   .work_stealing = config.work_stealing}),
        work(asio::make_work_guard(io)),
        deadlines(io),
        file_ring(io),
        started(Clock::now()) {
    config.threads = pool.size();
    config.io_threads = std::max<std::size_t>(config.io_threads, 1);
    core.pool = &pool;
    pool.set_owner(&core);
    core.io = &io;
    core.task_timeout = config.task_timeout;
    core.deadlines = &deadlines;
    core.file_ring = &file_ring;
    core.asio_ring_reads = &asio_ring_reads;
    if (config.max_pending) {
      core.admission.emplace(*config.max_pending);
    }
    last_snapshot = started;
    reactors.reserve(config.io_threads);
    for (std::size_t i = 0; i < config.io_threads; ++i) {
      reactors.emplace_back([this, i] {
        const std::string name = "sluice-io" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        run_reactor();
      });
    }
  }

  ~Impl() {
    if (!drained) {
      drain(nanoseconds::max());
    }
    {
      std::lock_guard lock(async_mutex);
      if (async_shutdown.joinable()) {
        async_shutdown.join();
      }
    }
    // Tasks that ignored an earlier shutdown's stop still run on the
    // workers: wait for them, or the threads could not be joined.
    if (const auto left = pending(); left != 0) {
      detail::log().warn("runtime destroyed with {} task(s) still running; waiting for them", left);
      wait_pending(0, Clock::time_point::max());
    }
    stop_threads();
  }

  void run_reactor() noexcept {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        detail::log().error("a reactor handler threw: {}", e.what());
      } catch (...) {
        detail::log().error("a reactor handler threw a non-standard exception");
      }
    }
  }

  [[nodiscard]] std::uint64_t pending() const {
    const auto c = pool.counters();
    const auto finished = event(c, detail::Event::completed) + event(c, detail::Event::failed) +
                          event(c, detail::Event::cancelled) + event(c, detail::Event::timed_out) +
                          event(c, detail::Event::rejected);
    const auto spawned = event(c, detail::Event::spawned);
    return spawned > finished ? spawned - finished : 0;
  }

  // Waits until at most `allowed` tasks are pending or `until`.
  bool wait_pending(std::uint64_t allowed, Clock::time_point until) const {
    while (pending() > allowed) {
      if (Clock::now() >= until) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  static Clock::time_point after(nanoseconds d) {
    const auto now = Clock::now();
    return d >= Clock::time_point::max() - now ? Clock::time_point::max() : now + d;
  }

  // Steps 1-3 of shutdown: close admission, wait, cancel, wait the grace.
  // `self` tasks (the caller of co_await shutdown) are not waited for.
  bool drain(nanoseconds deadline, std::uint64_t self = 0) {
    std::lock_guard lock(shutdown_mutex);
    if (drained) {
      return drained_clean;
    }
    core.closing.request_stop();
    if (core.admission) {
      core.admission->close(errc::shutting_down);
    }
    bool clean = wait_pending(self, after(deadline));
    if (!clean) {
      const auto left = pending() - self;
      const auto before = pool.counters();
      detail::log().warn("shutdown: {} task(s) still running after the deadline; cancelling them",
                         left);
      core.stopping.request_stop();
      const bool stopped = wait_pending(self, after(config.shutdown_grace));
      const auto after_grace = pool.counters();
      detail::log().warn(
          "shutdown: cancelled {} task(s), {} timed out, {} finished during the grace period{}",
          event(after_grace, detail::Event::cancelled) - event(before, detail::Event::cancelled),
          event(after_grace, detail::Event::timed_out) - event(before, detail::Event::timed_out),
          (event(after_grace, detail::Event::completed) +
           event(after_grace, detail::Event::failed)) -
              (event(before, detail::Event::completed) + event(before, detail::Event::failed)),
          stopped ? "" : "; some did not stop");
      if (!stopped) {
        detail::log().error("shutdown: {} task(s) ignored the stop request and are still running",
                            pending() - self);
      }
    } else {
      detail::log().info("shutdown: every task finished");
    }
    drained = true;
    drained_clean = clean;
    return clean;
  }

  void stop_threads() {
    std::lock_guard lock(shutdown_mutex);
    if (threads_stopped) {
      return;
    }
    if (pending() != 0) {
      // Tasks that ignored their stop still run on the workers: joining them
      // would hang. Leave the threads; the destructor waits for the tasks.
      return;
    }
    work.reset();
    io.stop();
    for (auto& t : reactors) {
      t.join();
    }
    pool.stop();
    threads_stopped = true;
  }

  Config config;
  asio::io_context io;
  detail::Pool pool;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  detail::DeadlineQueue deadlines;
  // After io: freed before it, once the reactor threads are joined.
  detail::FileRingHolder file_ring;
  detail::Admission asio_ring_reads{detail::kAsioRingReads};
  detail::RuntimeCore core;
  std::vector<std::thread> reactors;
  const Clock::time_point started;

  std::mutex shutdown_mutex;
  bool drained = false;          // guarded by shutdown_mutex
  bool drained_clean = false;    // guarded by shutdown_mutex
  bool threads_stopped = false;  // guarded by shutdown_mutex
  std::mutex async_mutex;
  std::thread async_shutdown;  // guarded by async_mutex

  mutable std::mutex snapshot_mutex;
  mutable Clock::time_point last_snapshot;   // guarded by snapshot_mutex
  mutable std::uint64_t last_parked_ns = 0;  // guarded by snapshot_mutex
};

Runtime::Runtime(Config config) : impl_(std::make_unique<Impl>(config)), pool_(&impl_->pool) {}

Runtime::~Runtime() {
  if (detail::current_pool() == pool_) {
    detail::log().error("a Runtime destroyed from one of its own workers cannot join them");
    std::terminate();
  }
}

Executor Runtime::get_executor() noexcept { return Executor(impl_->pool, impl_->io); }

asio::io_context& Runtime::io_context() noexcept { return impl_->io; }

std::size_t Runtime::threads() const noexcept { return impl_->pool.size(); }

const Config& Runtime::config() const noexcept { return impl_->config; }

detail::RuntimeCore& Runtime::core() noexcept { return impl_->core; }

void Runtime::check_block_on(bool valid) const {
  if (detail::current_pool() != nullptr) {
    throw std::logic_error(
        "sluice::Runtime::block_on called from a sluice worker thread; co_await the task "
        "instead");
  }
  if (!valid) {
    throw std::invalid_argument("sluice::Runtime::block_on: empty task");
  }
  if (impl_->threads_stopped) {
    throw std::logic_error("sluice::Runtime::block_on after shutdown");
  }
}

bool Runtime::shutdown_timeout(std::chrono::nanoseconds deadline) {
  if (detail::current_pool() != nullptr) {
    throw std::logic_error(
        "sluice::Runtime::shutdown_timeout called from a worker thread; use co_await "
        "rt.shutdown(d)");
  }
  const bool clean = impl_->drain(std::max(deadline, nanoseconds::zero()));
  impl_->stop_threads();
  return clean;
}

Task<bool> Runtime::shutdown(std::chrono::nanoseconds deadline) {
  // The drain blocks, so it runs on a thread of its own; the awaiting task
  // is resumed on the pool when it is done.
  struct Awaiter {
    Impl* impl;
    nanoseconds deadline;
    bool result = false;
    static bool await_ready() noexcept { return false; }
    void await_suspend(std::coroutine_handle<detail::Promise<bool>> h) {
      auto& promise = h.promise();
      // A spawned caller (it has a scope) is itself pending: do not wait for it.
      const std::uint64_t self =
          promise.ctx_ != nullptr && promise.ctx_->scope() != nullptr ? 1 : 0;
      std::lock_guard lock(impl->async_mutex);
      if (impl->async_shutdown.joinable()) {
        impl->async_shutdown.join();
      }
      // Once the thread runs, the caller may be resumed and this frame freed:
      // the thread gets copies, and nothing here touches `this` afterwards.
      Impl* runtime = impl;
      bool* out = &result;
      const auto d = deadline;
      std::thread t([runtime, out, d, &promise, self] {
        *out = runtime->drain(d, self);
        promise.schedule();
      });
      runtime->async_shutdown = std::move(t);
    }
    [[nodiscard]] bool await_resume() const noexcept { return result; }
  };
  co_return co_await Awaiter{impl_.get(), std::max(deadline, nanoseconds::zero())};
}

Metrics Runtime::metrics() const {
  const auto c = impl_->pool.counters();
  Metrics m;
  m.spawned = event(c, detail::Event::spawned);
  m.completed = event(c, detail::Event::completed);
  m.failed = event(c, detail::Event::failed);
  m.cancelled = event(c, detail::Event::cancelled);
  m.timed_out = event(c, detail::Event::timed_out);
  m.rejected = event(c, detail::Event::rejected);
  const auto finished = m.completed + m.failed + m.cancelled + m.timed_out + m.rejected;
  m.pending = m.spawned > finished ? m.spawned - finished : 0;
  m.queued = std::min<std::uint64_t>(impl_->pool.queued(), m.pending);
  m.active = m.pending - m.queued;
  m.steals = c.steals;
  m.parks = c.parks;
  m.workers = impl_->pool.size();
  m.max_pending = impl_->config.max_pending;

  std::lock_guard lock(impl_->snapshot_mutex);
  const auto now = Clock::now();
  m.interval_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<nanoseconds>(now - impl_->last_snapshot).count());
  const auto parked = c.parked_ns - std::min(c.parked_ns, impl_->last_parked_ns);
  const auto capacity = m.interval_ns * m.workers;
  m.busy_ns = capacity > parked ? capacity - parked : 0;
  impl_->last_snapshot = now;
  impl_->last_parked_ns = c.parked_ns;
  return m;
}

struct Monitor::State {
  std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mutex
  std::thread thread;
};

Monitor::Monitor() noexcept = default;
Monitor::Monitor(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
Monitor::Monitor(Monitor&&) noexcept = default;
Monitor& Monitor::operator=(Monitor&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
  }
  return *this;
}
Monitor::~Monitor() { stop(); }

void Monitor::stop() noexcept {
  if (!state_) {
    return;
  }
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (state_->thread.joinable() && state_->thread.get_id() != std::this_thread::get_id()) {
    state_->thread.join();
  } else if (state_->thread.joinable()) {
    state_->thread.detach();  // stopped from its own callback
  }
  state_.reset();
}

Monitor Runtime::start_monitoring(std::chrono::nanoseconds every,
                                  std::function<void(const Metrics&)> fn) {
  if (every <= nanoseconds::zero()) {
    throw std::invalid_argument("sluice::Runtime::start_monitoring: period must be > 0");
  }
  if (!fn) {
    throw std::invalid_argument("sluice::Runtime::start_monitoring: empty function");
  }
  auto state = std::make_unique<Monitor::State>();
  state->thread = std::thread([this, every, fn = std::move(fn), s = state.get()] {
    pthread_setname_np(pthread_self(), "sluice-monitor");
    std::unique_lock lock(s->mutex);
    auto next = Clock::now() + every;
    while (!s->cv.wait_until(lock, next, [s] { return s->stopping; })) {
      lock.unlock();
      try {
        fn(metrics());
      } catch (const std::exception& e) {
        detail::log().warn("a monitoring callback threw: {}", e.what());
      } catch (...) {
        detail::log().warn("a monitoring callback threw a non-standard exception");
      }
      lock.lock();
      next += every;
    }
  });
  return Monitor(std::move(state));
}

}  // namespace sluice
