# Fuzz smoke runs for the ctest suite (label fuzz), included by
# tests/CMakeLists.txt. Registered only when clang can link libFuzzer
# (Debian: clang and libclang-rt-14-dev, see scripts/deps): the targets of
# tests/fuzz are then built with clang in <build>/fuzz as part of the build,
# and each runs TR_FUZZ_SMOKE_SECONDS (15) from its seed corpus. Only in the
# sanitizer build (the one `make test` runs) unless TR_FUZZ_SMOKE says otherwise.
set(TR_FUZZ_SMOKE_SECONDS 15 CACHE STRING "seconds of each fuzz smoke run")
option(TR_FUZZ_SMOKE "build the fuzz targets and register their smoke runs" ${TR_SANITIZE})
find_program(TR_CLANG NAMES clang clang-14)
set(tr_fuzz_ok OFF)
if(TR_FUZZ_SMOKE AND TR_CLANG)
  set(probe ${CMAKE_BINARY_DIR}/fuzz-probe)
  file(MAKE_DIRECTORY ${probe})
  file(WRITE ${probe}/probe.c
       "#include <stddef.h>\n#include <stdint.h>\n"
       "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
       "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${TR_CLANG} -fsanitize=fuzzer,address,undefined probe.c -o probe
                  WORKING_DIRECTORY ${probe} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(tr_fuzz_ok ON)
  endif()
endif()

if(tr_fuzz_ok)
  include(ExternalProject)
  ExternalProject_Add(fuzz_targets
    SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}
    BINARY_DIR ${CMAKE_BINARY_DIR}/fuzz
    CMAKE_ARGS -DCMAKE_C_COMPILER=${TR_CLANG} -DCMAKE_BUILD_TYPE=Debug
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)
  foreach(target fuzz_validate fuzz_urlquery fuzz_call_request)
    add_test(NAME fuzz.${target}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/run-fuzz ${CMAKE_BINARY_DIR}/fuzz/${target}
                     ${TR_FUZZ_SMOKE_SECONDS} ${CMAKE_BINARY_DIR}/fuzz-work/${target})
    set_tests_properties(fuzz.${target} PROPERTIES LABELS fuzz TIMEOUT 180)
  endforeach()
else()
  message(STATUS "fuzz smoke runs skipped: no clang with libFuzzer "
                 "(apt-get install clang libclang-rt-14-dev)")
endif()
