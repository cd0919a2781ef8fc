# ddpmkit::native = ddpmkit::ddpmkit + -march=native: the consumer's one-line opt-in to the
# SIMD kernels of the machine it builds on. Included by CMakeLists.txt (source tree,
# add_subdirectory, FetchContent) and by ddpmkitConfig.cmake (installed package), so the flag
# is checked with the compiler of the project that uses it.

# _ddpmkit_add_native_flag(TARGET FLAG): add FLAG (-march=native, or a generator expression
# around it) to TARGET's interface compile options when the C++ compiler takes -march=native,
# else say why the target adds nothing.
function(_ddpmkit_add_native_flag target flag)
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT ";${_languages};" MATCHES ";CXX;")
    message(WARNING "ddpmkit::native: C++ is not enabled in this project, so -march=native is not checked "
                    "nor added; ddpmkit::native is ddpmkit::ddpmkit alone")
    return()
  endif()
  if(CMAKE_CROSSCOMPILING)
    message(STATUS "ddpmkit::native: cross-compiling, so -march=native (the build machine's CPU) is not "
                   "added; give the target's -march yourself (ddpmkit::arch_name() says which kernels you get)")
    return()
  endif()
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native DDPMKIT_HAS_MARCH_NATIVE)
  if(DDPMKIT_HAS_MARCH_NATIVE)
    set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_OPTIONS "${flag}")
    # GCC 12's SLP vectorizer miscompiles constant vectors with AVX-512 (README: Compilers).
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      string(REPLACE "-march=native" "-fno-tree-slp-vectorize" _ddpmkit_slp "${flag}")
      set_property(TARGET ${target} APPEND PROPERTY INTERFACE_COMPILE_OPTIONS "${_ddpmkit_slp}")
    endif()
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    message(STATUS "ddpmkit::native: ${CMAKE_CXX_COMPILER_ID} does not take -march=native; "
                   "the NEON kernels need no flag on AArch64")
  else()
    message(WARNING "ddpmkit::native: the C++ compiler (${CMAKE_CXX_COMPILER_ID} "
                    "${CMAKE_CXX_COMPILER_VERSION}) does not take -march=native, so ddpmkit::native adds "
                    "no flag: the kernels follow your own flags (e.g. -mavx2 -mfma), "
                    "and without them they are the scalar ones. ddpmkit::arch_name() says which.")
  endif()
endfunction()
