# Installs a built sluice into a scratch prefix, then configures, builds and runs
# the consumer project beside this script against that prefix.
#
# test/CMakeLists.txt registers it as:
#
#   string(TOUPPER "${CMAKE_BUILD_TYPE}" sluice_build_type)
#   add_test(NAME consumer.find_package
#     COMMAND ${CMAKE_COMMAND}
#       -DSLUICE_SOURCE_DIR=${PROJECT_SOURCE_DIR}
#       -DSLUICE_BINARY_DIR=${PROJECT_BINARY_DIR}
#       -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer
#       -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
#       "-DCXX_FLAGS=${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${sluice_build_type}}"
#       "-DEXE_LINKER_FLAGS=${CMAKE_EXE_LINKER_FLAGS}"
#       "-DGENERATOR=${CMAKE_GENERATOR}"
#       -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run-consumer-test.cmake)
#   set_tests_properties(consumer.find_package PROPERTIES TIMEOUT 300 LABELS consumer)
#
# Required: SLUICE_SOURCE_DIR, SLUICE_BINARY_DIR, WORK_DIR, CXX_COMPILER.
# Optional: CXX_FLAGS and EXE_LINKER_FLAGS, the flags libsluice was built with
# (a sanitized static libsluice only links into a program built with the same
# -fsanitize flags; the consumer gets no build type of its own, so these are
# its only flags), and GENERATOR (CMake's default generator otherwise).
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS SLUICE_SOURCE_DIR SLUICE_BINARY_DIR WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run-consumer-test.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
set(exe "${build}/sluice_consumer")

# Runs a command; on failure stops with its combined output.
function(consumer_step what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${rc})\ncommand: ${ARGN}\n${out}")
  endif()
  message(STATUS "consumer test: ${what}: ok")
endfunction()

file(REMOVE_RECURSE "${prefix}" "${build}")

consumer_step("install sluice"
  "${CMAKE_COMMAND}" --install "${SLUICE_BINARY_DIR}" --prefix "${prefix}")

set(configure_args
  -S "${SLUICE_SOURCE_DIR}/test/consumer"
  -B "${build}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}")
if(DEFINED GENERATOR AND NOT GENERATOR STREQUAL "")
  list(APPEND configure_args -G "${GENERATOR}")
endif()
consumer_step("configure" "${CMAKE_COMMAND}" ${configure_args})

consumer_step("build" "${CMAKE_COMMAND}" --build "${build}")

execute_process(COMMAND "${exe}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out
  TIMEOUT 60)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer test: ${exe} exited with ${rc}\n${out}")
endif()
if(NOT out MATCHES "(^|[^0-9])42([^0-9]|$)")
  message(FATAL_ERROR "consumer test: ${exe} did not print 42\n${out}")
endif()
message(STATUS "consumer test: run: ok\n${out}")
