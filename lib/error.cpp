#include "sluice/error.hpp"

namespace sluice {
namespace {

class Category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "sluice"; }
  [[nodiscard]] std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::cancelled:
        return "task cancelled";
      case errc::timed_out:
        return "task timed out";
      case errc::rejected:
        return "task rejected: admission bound (max_pending) reached";
      case errc::shutting_down:
        return "task refused: the scope or runtime is shutting down";
      case errc::failed:
        return "task failed with an exception";
    }
    return "unknown sluice error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

void throw_error(errc e) {
  switch (e) {
    case errc::cancelled:
      throw cancelled_error();
    case errc::timed_out:
      throw timeout_error();
    case errc::rejected:
      throw rejected_error();
    case errc::shutting_down:
      throw shutting_down_error();
    case errc::failed:
      break;
  }
  throw task_error(e);
}

}  // namespace sluice
