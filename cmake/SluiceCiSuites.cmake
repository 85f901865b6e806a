# The build tree of the `ci` preset. It compiles nothing of its own: its build
# step configures and builds each preset named in SLUICE_CI_SUITES in that
# preset's own tree (build/<preset>, with the preset's compiler and flags), one
# after another, and its tests are those presets' test suites, one test each.
# A CMake workflow preset takes exactly one configure preset, so this tree is
# what lets one workflow (`cmake --workflow --preset ci`) run every CI suite.

enable_testing()

set(_sluice_previous_suite "")
foreach(suite IN LISTS SLUICE_CI_SUITES)
  add_custom_target(ci-${suite} ALL
    COMMAND ${CMAKE_COMMAND} --preset ${suite}
    COMMAND ${CMAKE_COMMAND} --build --preset ${suite}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    USES_TERMINAL
    COMMENT "CI suite ${suite}: configure and build build/${suite}"
    VERBATIM)
  # One suite at a time: each build already uses every core.
  if(_sluice_previous_suite)
    add_dependencies(ci-${suite} ci-${_sluice_previous_suite})
  endif()
  set(_sluice_previous_suite ${suite})

  add_test(NAME ${suite}
    COMMAND ${CMAKE_CTEST_COMMAND} --preset ${suite}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  # The whole suite runs inside this one test; its own tests keep their own
  # timeouts, this one only guards against a hang outside them.
  set_tests_properties(${suite} PROPERTIES TIMEOUT 3600)
endforeach()
