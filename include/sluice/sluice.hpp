#pragma once

// The whole public API of sluice.
#include "sluice/config.hpp"
#include "sluice/error.hpp"
#include "sluice/executor.hpp"
#include "sluice/file.hpp"
#include "sluice/join_handle.hpp"
#include "sluice/lines.hpp"
#include "sluice/log.hpp"
#include "sluice/metrics.hpp"
#include "sluice/result.hpp"
#include "sluice/runtime.hpp"
#include "sluice/scope.hpp"
#include "sluice/signal.hpp"
#include "sluice/task.hpp"
#include "sluice/time.hpp"
#include "sluice/use_task.hpp"
