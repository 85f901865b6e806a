#pragma once

#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

namespace sluice {

/// Why a task did not produce its value (besides throwing).
enum class errc {
  cancelled = 1,  ///< stop was requested before the task finished
  timed_out,      ///< the task's timeout elapsed first
  rejected,       ///< admission refused it: its scope was at max_pending
  shutting_down,  ///< spawned after stop or shutdown began
  failed,         ///< the task threw; Result::exception() holds what
};

/// The category of sluice::errc; name() is "sluice".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

namespace detail {
/// How a task with failure `code` ends: that errc if `code` is one of
/// sluice's, else failed (another category, or a value cast into errc).
inline errc outcome_of(const std::error_code& code) noexcept {
  const int v = code.value();
  return code.category() == error_category() && v >= static_cast<int>(errc::cancelled) &&
                 v <= static_cast<int>(errc::failed)
             ? static_cast<errc>(v)
             : errc::failed;
}
}  // namespace detail

/// Base of the exceptions `co_await handle` throws for sluice::errc outcomes.
class task_error : public std::system_error {
 public:
  explicit task_error(errc e) : std::system_error(make_error_code(e)) {}
  task_error(errc e, const std::string& what) : std::system_error(make_error_code(e), what) {}
};

class cancelled_error : public task_error {
 public:
  cancelled_error() : task_error(errc::cancelled) {}
};

class timeout_error : public task_error {
 public:
  timeout_error() : task_error(errc::timed_out) {}
};

class rejected_error : public task_error {
 public:
  rejected_error() : task_error(errc::rejected) {}
};

class shutting_down_error : public task_error {
 public:
  shutting_down_error() : task_error(errc::shutting_down) {}
};

/// Throws the exception type matching `e` (`failed` has none of its own:
/// it throws task_error).
[[noreturn]] void throw_error(errc e);

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::errc> : std::true_type {};
