# Shared CMake helpers: dependencies, warnings, sanitizers.

function(udrpc_find_deps)
  find_path(XXHASH_INCLUDE_DIR xxhash.h)
  find_library(XXHASH_LIBRARY xxhash)
  if(NOT XXHASH_INCLUDE_DIR OR NOT XXHASH_LIBRARY)
    message(FATAL_ERROR "xxHash not found: apt-get install libxxhash-dev (./build.sh does it)")
  endif()
  set(XXHASH_INCLUDE_DIR ${XXHASH_INCLUDE_DIR} PARENT_SCOPE)
  set(XXHASH_LIBRARY ${XXHASH_LIBRARY} PARENT_SCOPE)

  find_path(IBVERBS_INCLUDE_DIR infiniband/verbs.h)
  find_library(IBVERBS_LIBRARY ibverbs)
  if(IBVERBS_INCLUDE_DIR AND IBVERBS_LIBRARY AND NOT UDRPC_NO_VERBS)
    message(STATUS "udrpc: rdma-core found (${IBVERBS_LIBRARY}): the verbs transport is built")
    set(UDRPC_HAVE_VERBS ON PARENT_SCOPE)
  elseif(UDRPC_NO_VERBS)
    message(STATUS "udrpc: UDRPC_NO_VERBS: the verbs transport is left out, the rest builds")
    set(UDRPC_HAVE_VERBS OFF PARENT_SCOPE)
  else()
    message(STATUS "udrpc: rdma-core headers not found (apt-get install libibverbs-dev): "
                   "the verbs transport is left out, the rest builds")
    set(UDRPC_HAVE_VERBS OFF PARENT_SCOPE)
  endif()
  set(IBVERBS_INCLUDE_DIR ${IBVERBS_INCLUDE_DIR} PARENT_SCOPE)
  set(IBVERBS_LIBRARY ${IBVERBS_LIBRARY} PARENT_SCOPE)

  # The mlx5 fast path: rdma-core's mlx5dv header and libmlx5 (both in
  # libibverbs-dev), on top of the verbs transport's set-up.
  find_path(MLX5DV_INCLUDE_DIR infiniband/mlx5dv.h)
  find_library(MLX5_LIBRARY mlx5)
  if(IBVERBS_INCLUDE_DIR AND IBVERBS_LIBRARY AND NOT UDRPC_NO_VERBS AND MLX5DV_INCLUDE_DIR
     AND MLX5_LIBRARY)
    message(STATUS "udrpc: mlx5dv found (${MLX5_LIBRARY}): the mlx5 transport is built")
    set(UDRPC_HAVE_MLX5 ON PARENT_SCOPE)
  else()
    message(STATUS "udrpc: rdma-core's mlx5dv not found: the mlx5 transport is left out")
    set(UDRPC_HAVE_MLX5 OFF PARENT_SCOPE)
  endif()
  set(MLX5_LIBRARY ${MLX5_LIBRARY} PARENT_SCOPE)

  # The AF_XDP transport: libbpf (libbpf-dev) loads and attaches its XDP
  # program; the socket and its rings are udrpc's own code.
  find_path(LIBBPF_INCLUDE_DIR bpf/libbpf.h)
  find_library(LIBBPF_LIBRARY bpf)
  if(LIBBPF_INCLUDE_DIR AND LIBBPF_LIBRARY AND NOT UDRPC_NO_XDP)
    message(STATUS "udrpc: libbpf found (${LIBBPF_LIBRARY}): the xdp transport is built")
    set(UDRPC_HAVE_XDP ON PARENT_SCOPE)
  elseif(UDRPC_NO_XDP)
    message(STATUS "udrpc: UDRPC_NO_XDP: the xdp transport is left out, the rest builds")
    set(UDRPC_HAVE_XDP OFF PARENT_SCOPE)
  else()
    message(STATUS "udrpc: libbpf not found (apt-get install libbpf-dev): "
                   "the xdp transport is left out")
    set(UDRPC_HAVE_XDP OFF PARENT_SCOPE)
  endif()
  set(LIBBPF_INCLUDE_DIR ${LIBBPF_INCLUDE_DIR} PARENT_SCOPE)
  set(LIBBPF_LIBRARY ${LIBBPF_LIBRARY} PARENT_SCOPE)
endfunction()

# One module of the library (a folder): an object library of its sources,
# compiled with only its own folder, the public header and the modules it
# names in DEPS on the include path, so that an include of another folder
# that the module does not depend on fails to compile. Headers are
# included by their bare names. Its folder is what it shows its users.
function(udrpc_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DIRS" ${ARGN})
  add_library(udrpc_${name} OBJECT ${M_SOURCES})
  set_target_properties(udrpc_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden)
  target_compile_definitions(udrpc_${name} PRIVATE UDRPC_BUILDING)
  target_include_directories(udrpc_${name}
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${M_PRIVATE_DIRS}
    INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}
    PUBLIC ${CMAKE_SOURCE_DIR}/include)
  foreach(d ${M_DEPS})
    target_link_libraries(udrpc_${name} PRIVATE udrpc_${d})
  endforeach()
  udrpc_target_flags(udrpc_${name})
endfunction()

# Warnings and sanitizers for one target of ours.
function(udrpc_target_flags tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra -Wmissing-prototypes -Wshadow
                         -Wformat=2 -Wno-unused-parameter)
  if(UDRPC_WERROR)
    target_compile_options(${tgt} PRIVATE -Werror)
  endif()
endfunction()

if(UDRPC_SANITIZE)
  string(REPLACE ";" "," _san "${UDRPC_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
endif()
