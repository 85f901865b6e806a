# Warnings for sluice's own targets. PRIVATE, so consumers never inherit them;
# -Werror is added by the CI presets only.
function(sluice_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough
    # g++ 12 reports -Wnull-dereference inside Asio's scheduler at -O3.
    $<$<CXX_COMPILER_ID:Clang>:-Wnull-dereference>
    $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>
    # g++ 12 at -O3 reports -Wrestrict inside libstdc++'s char_traits for
    # plain std::string concatenation (a known false positive).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
endfunction()
