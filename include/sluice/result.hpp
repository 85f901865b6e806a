#pragma once

#include <exception>
#include <functional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "sluice/error.hpp"

namespace sluice {

/// How a task ended: its value, or an error code with the exception behind it.
///
/// `error()` is empty for a value, errc::failed for a task that threw, and
/// errc::cancelled / timed_out / rejected / shutting_down otherwise.
/// `exception()` is what `value()` throws: the task's own exception, or the
/// sluice exception matching the code (cancelled_error, ...).
template <class T>
class Result {
  using Stored =
      std::conditional_t<std::is_void_v<T>, std::monostate,
                         std::conditional_t<std::is_reference_v<T>,
                                            std::reference_wrapper<std::remove_reference_t<T>>, T>>;
  struct Failure {
    std::error_code code;
    std::exception_ptr exception;
  };
  // A void result is a Failure whose exception is null on success (every
  // failure carries one), so it takes no discriminator.
  using State = std::conditional_t<std::is_void_v<T>, Failure, std::variant<Stored, Failure>>;

 public:
  /// A value (not for void).
  template <class U = T>
  requires(!std::is_void_v<T> && std::is_constructible_v<Stored, U&&>) Result(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT

  /// Success of a void task.
  Result() requires std::is_void_v<T> : state_() {}

  /// A failure with `code` (and the exception that explains it, if any).
  static Result failure(std::error_code code, std::exception_ptr ex = nullptr) {
    if (!ex) {
      ex = exception_for(code);
    }
    return Result(Failure{code, std::move(ex)});
  }
  /// A task that threw `ex`.
  static Result failure(std::exception_ptr ex) {
    const auto code = make_error_code(errc::failed);
    if (!ex) {
      ex = exception_for(code);
    }
    return Result(Failure{code, std::move(ex)});
  }

  [[nodiscard]] bool has_value() const noexcept {
    if constexpr (std::is_void_v<T>) {
      return !state_.exception;
    } else {
      return state_.index() == 0;
    }
  }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; otherwise throws exception().
  decltype(auto) value() & { return get(*this); }
  decltype(auto) value() const& { return get(*this); }
  decltype(auto) value() && { return get(std::move(*this)); }

  [[nodiscard]] std::error_code error() const noexcept {
    return has_value() ? std::error_code{} : failed().code;
  }
  [[nodiscard]] std::exception_ptr exception() const noexcept {
    return has_value() ? nullptr : failed().exception;
  }

 private:
  explicit Result(Failure f) : state_(make_failed(std::move(f))) {}

  static State make_failed(Failure f) {
    if constexpr (std::is_void_v<T>) {
      return f;
    } else {
      return State(std::in_place_index<1>, std::move(f));
    }
  }
  [[nodiscard]] const Failure& failed() const noexcept {
    if constexpr (std::is_void_v<T>) {
      return state_;
    } else {
      return *std::get_if<1>(&state_);
    }
  }

  static std::exception_ptr exception_for(std::error_code code) {
    if (code.category() == error_category()) {
      try {
        throw_error(static_cast<errc>(code.value()));
      } catch (...) {
        return std::current_exception();
      }
    }
    return std::make_exception_ptr(std::system_error(code));
  }

  template <class Self>
  static decltype(auto) get(Self&& self) {
    if (!self.has_value()) {
      std::rethrow_exception(self.failed().exception);
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(std::get<0>(self.state_).get());
    } else {
      return std::get<0>(std::forward<Self>(self).state_);
    }
  }

  State state_;
};

}  // namespace sluice
