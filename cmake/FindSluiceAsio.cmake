# Finds Debian's standalone Asio (headers only, no CMake package) and liburing,
# and wraps them in one INTERFACE target, sluice::asio, that carries every Asio
# configuration macro. Every translation unit of a program must see the same
# Asio macros (mixing them is a silent ODR violation), so nothing else in the
# tree defines ASIO_* on its own.
#
# Input: SLUICE_IO_URING_ONLY (bool) — put sockets and timers on io_uring too.
# Output: sluice::asio, SluiceAsio_FOUND.
include(FindPackageHandleStandardArgs)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_path(SLUICE_ASIO_INCLUDE_DIR asio.hpp)
pkg_check_modules(SLUICE_URING QUIET IMPORTED_TARGET liburing>=2.0)
find_package_handle_standard_args(SluiceAsio
  REQUIRED_VARS SLUICE_ASIO_INCLUDE_DIR SLUICE_URING_FOUND)

if(SluiceAsio_FOUND AND NOT TARGET sluice_asio AND NOT TARGET sluice::asio)
  add_library(sluice_asio INTERFACE)
  target_include_directories(sluice_asio SYSTEM INTERFACE
    $<BUILD_INTERFACE:${SLUICE_ASIO_INCLUDE_DIR}>)
  target_compile_definitions(sluice_asio INTERFACE
    ASIO_NO_DEPRECATED
    ASIO_HAS_IO_URING
    $<$<BOOL:${SLUICE_IO_URING_ONLY}>:ASIO_DISABLE_EPOLL>
    $<$<BOOL:${SLUICE_IO_URING_ONLY}>:SLUICE_IO_URING_ONLY=1>
    # Asio 1.22 enables co_await for clang only with libc++'s
    # <experimental/coroutine>; libstdc++ has <coroutine>.
    $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1>)
  target_link_libraries(sluice_asio INTERFACE Threads::Threads PkgConfig::SLUICE_URING)
  set_target_properties(sluice_asio PROPERTIES EXPORT_NAME asio)
  add_library(sluice::asio ALIAS sluice_asio)
endif()
