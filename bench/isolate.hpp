// Runs one case in a forked child, so that its VmHWM is its own and a crash
// or hang of one case does not take the whole run with it.
#pragma once

#include <functional>
#include <string>

namespace bench {

/// Forks, runs `body` in the child and returns the text it returned.
/// Throws std::runtime_error when the child dies on a signal, exits with an
/// error, or is still running after `timeout_s` seconds (it is then killed).
/// The caller must be single-threaded: it forks.
std::string run_in_child(const std::function<std::string()>& body, int timeout_s);

}  // namespace bench
