#pragma once

namespace sluice {

/// Verbosity of sluice's own log (spdlog logger "sluice", on stderr).
/// The default is `warn`: warnings and lifecycle problems only.
enum class LogLevel { trace, debug, info, warn, error, off };

/// Thread safety: any thread.
void set_log_level(LogLevel level) noexcept;

}  // namespace sluice
