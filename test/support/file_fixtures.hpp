// Fixtures for the file tests: a scratch directory, checkable contents, and
// the io_uring backend the process is expected to use.
#pragma once

#include <liburing.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/io_uring_probe.hpp"

namespace sluice::test {

/// A fresh directory under the system's temp dir, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sluice-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  std::filesystem::path write(const std::string& name, const std::vector<std::byte>& data) const {
    const std::filesystem::path p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    REQUIRE(out.good());
    return p;
  }

 private:
  std::filesystem::path path_;
};

/// Bytes that differ at every offset (splitmix64), so a read from the wrong
/// place cannot match by accident.
inline std::vector<std::byte> pattern(std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> out(size);
  std::uint64_t x = seed;
  for (std::size_t i = 0; i < size; i += 8) {
    x += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (std::size_t k = 0; k < 8 && i + k < size; ++k) {
      out[i + k] = static_cast<std::byte>(z >> (8 * k));
    }
  }
  return out;
}

/// Asked independently of sluice: may this process set up an io_uring?
inline bool kernel_allows_io_uring() {
  io_uring ring{};
  if (io_uring_queue_init(2, &ring, 0) < 0) {
    return false;
  }
  io_uring_queue_exit(&ring);
  return true;
}

inline bool disabled_by_environment() {
  const char* v = std::getenv("SLUICE_DISABLE_IO_URING");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

/// Whether file reads must use io_uring under `backend`.
inline bool expect_io_uring(detail::FileBackend backend) {
  switch (backend) {
    case detail::FileBackend::io_uring:
      return kernel_allows_io_uring();
    case detail::FileBackend::blocking:
      return false;
    case detail::FileBackend::automatic:
      break;
  }
  return !disabled_by_environment() && kernel_allows_io_uring();
}

inline const char* name(detail::FileBackend backend) {
  switch (backend) {
    case detail::FileBackend::io_uring:
      return "io_uring";
    case detail::FileBackend::blocking:
      return "blocking";
    case detail::FileBackend::automatic:
      break;
  }
  return "automatic";
}

/// Forces a backend for the lifetime of the object.
struct ForceBackend {
  explicit ForceBackend(detail::FileBackend backend) { detail::force_file_backend(backend); }
  ForceBackend(const ForceBackend&) = delete;
  ForceBackend& operator=(const ForceBackend&) = delete;
  ~ForceBackend() { detail::force_file_backend(detail::FileBackend::automatic); }
};

// Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread's
// effective set (threads it starts inherit that), so that even root gets
// EACCES; restores them at the end. Capabilities are per thread on Linux.
class WithoutFileCapabilities {
 public:
  WithoutFileCapabilities() {
    if (::syscall(SYS_capget, &header_, saved_.data()) != 0) {
      return;
    }
    auto reduced = saved_;
    reduced[0].effective &= ~((1U << CAP_DAC_OVERRIDE) | (1U << CAP_DAC_READ_SEARCH));
    dropped_ = ::syscall(SYS_capset, &header_, reduced.data()) == 0;
  }
  WithoutFileCapabilities(const WithoutFileCapabilities&) = delete;
  WithoutFileCapabilities& operator=(const WithoutFileCapabilities&) = delete;
  ~WithoutFileCapabilities() {
    if (dropped_) {
      ::syscall(SYS_capset, &header_, saved_.data());
    }
  }

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, 2> saved_{};
  bool dropped_ = false;
};

}  // namespace sluice::test
