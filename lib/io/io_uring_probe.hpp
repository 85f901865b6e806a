// Whether file reads may use io_uring in this process.
//
// Asio's mixed mode (ASIO_HAS_IO_URING without ASIO_DISABLE_EPOLL) puts only
// files on io_uring, and a ring that the kernel refuses (seccomp profiles,
// gVisor, kernel.io_uring_disabled) shows up only when the first
// random_access_file is constructed, as a std::system_error thrown again on
// every later attempt (PLATFORM.md, question 3). So the decision is made once
// per process, before Asio is asked: SLUICE_DISABLE_IO_URING=1, then a probe
// ring of our own; and if Asio still refuses later, that refusal switches the
// process to the fallback too. A fallback is logged once, as a warning (at
// info level when SLUICE_DISABLE_IO_URING asked for it).
#pragma once

#include <string_view>

namespace sluice::detail {

/// Which backend File::open picks. Tests force one; `automatic` is the
/// process-wide decision described above.
enum class FileBackend { automatic, io_uring, blocking };

/// For tests: `io_uring` skips the probe and the environment (Asio's own
/// refusal still falls back), `blocking` never uses io_uring.
/// Thread safety: any thread; files already open keep their backend.
void force_file_backend(FileBackend backend) noexcept;

/// True: the next File::open tries Asio's random_access_file.
/// Thread safety: any thread; the probe runs once, on the first call.
[[nodiscard]] bool use_io_uring_for_files() noexcept;

/// Asio refused to set up its ring although the probe succeeded: logs it
/// (once per process) and turns io_uring off for later opens.
void io_uring_refused_by_asio(std::string_view reason) noexcept;

/// For tests: forgets an Asio refusal and that the fallback was logged, so
/// that a later test sees the process as it started.
void forget_io_uring_refusal() noexcept;

}  // namespace sluice::detail
