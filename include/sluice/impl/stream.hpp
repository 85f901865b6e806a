// Scope::stream_process, batch_process and par_map_async.
//
// One engine: a producer loop in a nested scope bounded at the concurrency.
// It takes an admission slot *before* pulling an input, so the input is
// never more than the bound ahead, and each unit (an item, or a batch)
// starts as soon as one finishes. Units deliver each item's Result to a
// serialised sink by input index; the collecting overloads store by index
// and so return results in input order.
#pragma once

#include <algorithm>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// What the units share: the user's function and the serialised sink.
template <class Item, class U, class Fn, class Deliver>
struct Scope::Pump {
  Pump(Fn f, Deliver d) : fn(std::move(f)), deliver(std::move(d)) {}

  Fn fn;  // called from several workers at once
  Deliver deliver;
  std::mutex mutex;
  std::exception_ptr sink_error;  // guarded by mutex: the first sink exception

  void put(std::size_t index, Result<U> r) noexcept {
    std::lock_guard lock(mutex);
    try {
      deliver(index, std::move(r));
    } catch (...) {
      if (!sink_error) {
        sink_error = std::current_exception();
      }
    }
  }

  // Runs `item` and delivers its outcome. The unit ends the way the item
  // did, so the runtime's counters count items, not wrappers.
  Task<void> run(Item item, std::size_t index) {
    std::exception_ptr failure;
    try {
      if constexpr (std::is_void_v<U>) {
        co_await std::invoke(fn, std::move(item));
        put(index, Result<void>());
      } else {
        U value = co_await std::invoke(fn, std::move(item));
        put(index, Result<U>(std::move(value)));
      }
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      detail::TaskContext* ctx = co_await detail::CurrentContext{};
      put(index, Result<U>::failure(make_error_code(Scope::classify(failure, *ctx)), failure));
      std::rethrow_exception(failure);
    }
  }

  // Runs a batch in sequence; every item gets its own Result.
  Task<void> run_batch(std::vector<Item> batch, std::size_t first) {
    std::exception_ptr last_failure;
    for (std::size_t k = 0; k < batch.size(); ++k) {
      std::exception_ptr failure;
      try {
        if constexpr (std::is_void_v<U>) {
          co_await std::invoke(fn, std::move(batch[k]));
          put(first + k, Result<void>());
        } else {
          U value = co_await std::invoke(fn, std::move(batch[k]));
          put(first + k, Result<U>(std::move(value)));
        }
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        detail::TaskContext* ctx = co_await detail::CurrentContext{};
        const errc code = Scope::classify(failure, *ctx);
        put(first + k, Result<U>::failure(make_error_code(code), failure));
        last_failure = failure;
        if (code == errc::cancelled || code == errc::timed_out) {
          // Stopped: the rest of the batch is cancelled without running.
          for (std::size_t rest = k + 1; rest < batch.size(); ++rest) {
            put(first + rest, Result<U>::failure(make_error_code(code)));
          }
          break;
        }
      }
    }
    if (last_failure) {
      std::rethrow_exception(last_failure);
    }
  }
};

namespace detail {

inline void check_positive(std::size_t n, const char* what) {
  if (n == 0) {
    throw std::invalid_argument(std::string("sluice::Scope: ") + what + " must be at least 1");
  }
}

// Stops `inner` when the calling task is cancelled or times out.
struct StopLink {
  Scope* inner;
  void operator()() const noexcept { inner->request_stop(); }
};

}  // namespace detail

template <std::ranges::input_range R, class F, class Sink>
Task<void> Scope::stream_process(R inputs, std::size_t max_concurrency, F fn, Sink sink) {
  detail::check_positive(max_concurrency, "max_concurrency");
  using Item = std::ranges::range_value_t<R>;
  using U = detail::task_value_t<std::invoke_result_t<F&, Item>>;
  Pump<Item, U, F, Sink> pump(std::move(fn), std::move(sink));
  Scope inner(*this,
              ScopeOptions{.max_pending = std::min(max_concurrency, detail::ScopeState::kMaxBound),
                           .name = name()});
  std::optional<std::stop_callback<detail::StopLink>> caller_link;
  if (detail::TaskContext* ctx = co_await detail::CurrentContext{}) {
    caller_link.emplace(ctx->stop_token(), detail::StopLink{&inner});
  }

  std::size_t index = 0;
  auto it = std::ranges::begin(inputs);
  const auto end = std::ranges::end(inputs);
  bool stopped = false;
  std::exception_ptr pull_error;  // from the input or fn: stops the rest, then rethrown
  for (;;) {
    if (!co_await SlotAwaiter(inner)) {
      stopped = true;
      break;
    }
    try {
      HeldSlot held(inner);  // given back if nothing starts: input ended, or pulling threw
      if (it == end) {
        break;
      }
      auto task = pump.run(Item(*it), index++);
      held.release();  // start() owns it from here
      // Where other workers can take it: the producer goes on pulling, and
      // a source may block for its next element (a pipe, a terminal).
      JoinHandle<void>(inner.start(std::move(task), 2, nullptr, detail::Placement::shared));
      ++it;  // only once the item is out: the one read already never waits
    } catch (...) {
      pull_error = std::current_exception();
      break;
    }
  }
  co_await settle(inner, pull_error);
  caller_link.reset();
  if (stopped) {
    if constexpr (std::ranges::sized_range<R>) {
      const auto total = static_cast<std::size_t>(std::ranges::size(inputs));
      for (; index < total; ++index) {
        pump.put(index, Result<U>::failure(make_error_code(errc::cancelled)));
      }
    }
  }
  if (pump.sink_error) {
    std::rethrow_exception(pump.sink_error);
  }
}

namespace detail {

// Collects Results by index (calls are serialised by the pump).
template <class U>
struct Collector {
  std::vector<std::optional<Result<U>>>* slots;
  void operator()(std::size_t index, Result<U> r) const {
    if (index >= slots->size()) {
      slots->resize(index + 1);
    }
    (*slots)[index].emplace(std::move(r));
  }
};

template <class U>
std::vector<Result<U>> unwrap(std::vector<std::optional<Result<U>>>& slots) {
  std::vector<Result<U>> out;
  out.reserve(slots.size());
  for (auto& slot : slots) {
    out.push_back(slot ? std::move(*slot) : Result<U>::failure(make_error_code(errc::cancelled)));
  }
  return out;
}

}  // namespace detail

template <std::ranges::input_range R, class F>
Task<std::vector<
    Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
Scope::stream_process(R inputs, std::size_t max_concurrency, F fn) {
  using U = detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>;
  std::vector<std::optional<Result<U>>> slots;
  co_await stream_process(std::move(inputs), max_concurrency, std::move(fn),
                          detail::Collector<U>{&slots});
  co_return detail::unwrap(slots);
}

template <std::ranges::input_range R, class F>
Task<std::vector<
    Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
Scope::batch_process(R items, std::size_t batch_size, std::size_t max_concurrent_batches, F fn) {
  detail::check_positive(batch_size, "batch_size");
  detail::check_positive(max_concurrent_batches, "max_concurrent_batches");
  using Item = std::ranges::range_value_t<R>;
  using U = detail::task_value_t<std::invoke_result_t<F&, Item>>;
  std::vector<std::optional<Result<U>>> slots;
  Pump<Item, U, F, detail::Collector<U>> pump(std::move(fn), detail::Collector<U>{&slots});
  Scope inner(*this, ScopeOptions{.max_pending = std::min(max_concurrent_batches,
                                                          detail::ScopeState::kMaxBound),
                                  .name = name()});
  std::optional<std::stop_callback<detail::StopLink>> caller_link;
  if (detail::TaskContext* ctx = co_await detail::CurrentContext{}) {
    caller_link.emplace(ctx->stop_token(), detail::StopLink{&inner});
  }

  std::size_t index = 0;
  auto it = std::ranges::begin(items);
  const auto end = std::ranges::end(items);
  bool stopped = false;
  std::exception_ptr pull_error;  // from the input or fn: stops the rest, then rethrown
  for (;;) {
    if (!co_await SlotAwaiter(inner)) {
      stopped = true;
      break;
    }
    try {
      HeldSlot held(inner);  // given back if nothing starts: input ended, or pulling threw
      std::vector<Item> batch;
      batch.reserve(batch_size);
      for (; batch.size() < batch_size && it != end; ++it) {
        batch.push_back(*it);
      }
      if (batch.empty()) {
        break;  // `held` gives the slot back
      }
      const auto first = index;
      index += batch.size();
      auto task = pump.run_batch(std::move(batch), first);
      held.release();  // start() owns it from here
      JoinHandle<void>(inner.start(std::move(task), 2, nullptr, detail::Placement::shared));
    } catch (...) {
      pull_error = std::current_exception();
      break;
    }
  }
  co_await settle(inner, pull_error);
  caller_link.reset();
  if (stopped) {
    if constexpr (std::ranges::sized_range<R>) {
      slots.resize(static_cast<std::size_t>(std::ranges::size(items)));
    }
  }
  co_return detail::unwrap(slots);
}

template <std::ranges::input_range R, class F>
Task<std::vector<
    Result<detail::task_value_t<std::invoke_result_t<F&, std::ranges::range_value_t<R>>>>>>
Scope::par_map_async(R&& items, F fn) {
  // Every item at once, up to the largest bound a scope counts.
  std::size_t bound = detail::ScopeState::kMaxBound;
  if constexpr (std::ranges::sized_range<R>) {
    bound = std::clamp<std::size_t>(static_cast<std::size_t>(std::ranges::size(items)), 1,
                                    detail::ScopeState::kMaxBound);
  }
  co_return co_await stream_process(std::views::all(std::forward<R>(items)), bound, std::move(fn));
}

}  // namespace sluice
