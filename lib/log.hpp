#pragma once

#include <spdlog/logger.h>

namespace sluice::detail {

/// sluice's logger ("sluice", stderr, level warn unless set_log_level says).
spdlog::logger& log() noexcept;

}  // namespace sluice::detail
