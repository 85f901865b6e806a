#include "sluice/runtime.hpp"

#include <pthread.h>

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <string>
#include <thread>
#include <vector>

#include "log.hpp"
#include "sched/pool.hpp"

namespace sluice {
namespace {

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

}  // namespace

Config Config::cpu_bound() noexcept { return Config{.threads = cores()}; }

Config Config::io_bound() noexcept { return Config{.threads = 2 * cores()}; }

struct Runtime::Impl {
  explicit Impl(Config c)
      : config(std::move(c)),
        pool(detail::Pool::Options{.threads = worker_count(config.threads),
                                   .work_stealing = config.work_stealing}),
        work(asio::make_work_guard(io)) {
    config.threads = pool.size();
    config.io_threads = std::max<std::size_t>(config.io_threads, 1);
    reactors.reserve(config.io_threads);
    for (std::size_t i = 0; i < config.io_threads; ++i) {
      reactors.emplace_back([this, i] {
        const std::string name = "sluice-io" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        run_reactor();
      });
    }
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

  ~Impl() {
    // The reactor goes first: its completions post into the pool.
    work.reset();
    io.stop();
    for (auto& t : reactors) {
      t.join();
    }
    pool.stop();
  }

  Config config;
  asio::io_context io;
  detail::Pool pool;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::vector<std::thread> reactors;
};

Runtime::Runtime(Config config)
    : impl_(std::make_unique<Impl>(std::move(config))), pool_(&impl_->pool) {}

Runtime::~Runtime() = default;

Executor Runtime::get_executor() noexcept { return Executor(impl_->pool, impl_->io); }

asio::io_context& Runtime::io_context() noexcept { return impl_->io; }

std::size_t Runtime::threads() const noexcept { return impl_->pool.size(); }

const Config& Runtime::config() const noexcept { return impl_->config; }

void Runtime::check_block_on(bool valid) {
  if (detail::current_pool() != nullptr) {
    throw std::logic_error(
        "sluice::Runtime::block_on called from a sluice worker thread; co_await the task "
        "instead");
  }
  if (!valid) {
    throw std::invalid_argument("sluice::Runtime::block_on: empty task");
  }
}

}  // namespace sluice
