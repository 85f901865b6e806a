# Warnings for sluice's own targets. PRIVATE, so consumers never inherit them;
# -Werror is added by the CI presets only.
function(sluice_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough
    # g++ 12 reports -Wnull-dereference inside Asio's scheduler at -O3.
    $<$<CXX_COMPILER_ID:Clang>:-Wnull-dereference>
    $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
endfunction()
