#include "log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>

#include "sluice/log.hpp"

namespace sluice {
namespace detail {

spdlog::logger& log() noexcept {
  // Leaked on purpose: the log may be used during static destruction.
  static spdlog::logger* logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto* l = new spdlog::logger("sluice", std::move(sink));
    l->set_level(spdlog::level::warn);
    l->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
    return l;
  }();
  return *logger;
}

}  // namespace detail

void set_log_level(LogLevel level) noexcept {
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
      spdlog::level::warn,  spdlog::level::err,   spdlog::level::off};
  detail::log().set_level(kLevels[static_cast<int>(level)]);
}

}  // namespace sluice
