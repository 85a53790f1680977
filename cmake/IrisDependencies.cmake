# Every dependency comes from a Debian package (or the CUDA toolkit); nothing is downloaded.
# tools/setup.sh installs the packages; a missing one stops here with the package to install.
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(OpenMP REQUIRED)
find_package(GTest REQUIRED)
find_package(PkgConfig REQUIRED)

if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_DEFINITIONS})
endif()

# OpenBLAS: prefer the OpenMP build (libopenblas-openmp-dev) so a BLAS call made inside one of our
# OpenMP loops runs single-threaded instead of oversubscribing the cores.
set(_iris_multiarch "${CMAKE_LIBRARY_ARCHITECTURE}")
find_library(IRIS_OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/${_iris_multiarch}/openblas-openmp NO_DEFAULT_PATH)
find_path(IRIS_OPENBLAS_INCLUDE cblas.h
  PATHS /usr/include/${_iris_multiarch}/openblas-openmp NO_DEFAULT_PATH)
if(NOT IRIS_OPENBLAS_LIBRARY OR NOT IRIS_OPENBLAS_INCLUDE)
  pkg_check_modules(OPENBLAS openblas)
  if(NOT OPENBLAS_FOUND)
    message(FATAL_ERROR "OpenBLAS not found: apt-get install libopenblas-openmp-dev")
  endif()
  find_library(IRIS_OPENBLAS_LIBRARY NAMES openblas HINTS ${OPENBLAS_LIBRARY_DIRS} REQUIRED)
  set(IRIS_OPENBLAS_INCLUDE ${OPENBLAS_INCLUDE_DIRS})
endif()
add_library(iris::openblas INTERFACE IMPORTED)
target_include_directories(iris::openblas INTERFACE ${IRIS_OPENBLAS_INCLUDE})
target_link_libraries(iris::openblas INTERFACE ${IRIS_OPENBLAS_LIBRARY})
message(STATUS "OpenBLAS: ${IRIS_OPENBLAS_LIBRARY}")

pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_library(IRIS_SPM_TRAIN_LIBRARY NAMES sentencepiece_train REQUIRED)
add_library(iris::sentencepiece INTERFACE IMPORTED)
target_link_libraries(iris::sentencepiece INTERFACE PkgConfig::SENTENCEPIECE ${IRIS_SPM_TRAIN_LIBRARY})

# CUDA backend switch. AUTO turns it on when nvcc is found.
set(IRIS_WITH_CUDA OFF)
if(IRIS_CUDA STREQUAL "ON" OR IRIS_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(IRIS_WITH_CUDA ON)
  elseif(IRIS_CUDA STREQUAL "ON")
    message(FATAL_ERROR "IRIS_CUDA=ON but no CUDA compiler (nvcc) was found; set CUDACXX or use -DIRIS_CUDA=OFF")
  endif()
endif()
message(STATUS "Iris CUDA backend: ${IRIS_WITH_CUDA} (IRIS_CUDA=${IRIS_CUDA})")

# CUDA toolchain (only when the backend is on). The architectures must be set before
# enable_language, or CMake caches its own default. nvcc 13 accepts C++20 with GCC >= 10.
if(IRIS_WITH_CUDA)
  set(CMAKE_CUDA_ARCHITECTURES ${IRIS_CUDA_ARCHS})
  # One cudart for everything: the shared one that CUDA::cudart names (not nvcc's static default too).
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  enable_language(CUDA)
  # C++20 for .cu files, as for .cpp. CMake 3.25 does not know nvcc's C++20 flag (nvcc has accepted
  # -std=c++20 since 12.0) and CUDA targets inherit CXX_STANDARD 20, so tell it the flag.
  if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_EXTENSIONS OFF)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "CUDA ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
endif()

# NCCL (optional, CUDA builds only): NcclComm, the communicator for GPU buffers. Without it the build
# leaves NcclComm out and --parallel.comm nccl is refused; the host-staged MPI path still runs on GPUs.
# NCCL comes with some CUDA toolkits (lib/), from NVIDIA's libnccl-dev package (/usr), or from
# -DNCCL_ROOT=DIR. -DIRIS_NCCL=OFF leaves it out even where it is installed.
set(IRIS_NCCL AUTO CACHE STRING "Build NcclComm: AUTO (when NCCL is found) or OFF")
set_property(CACHE IRIS_NCCL PROPERTY STRINGS AUTO OFF)
set(IRIS_WITH_NCCL OFF)
if(IRIS_WITH_CUDA AND NOT IRIS_NCCL STREQUAL "OFF")
  find_path(IRIS_NCCL_INCLUDE nccl.h
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES include)
  find_library(IRIS_NCCL_LIBRARY NAMES nccl
    HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
    PATH_SUFFIXES lib lib64 lib/${_iris_multiarch})
  if(IRIS_NCCL_INCLUDE AND IRIS_NCCL_LIBRARY)
    set(IRIS_WITH_NCCL ON)
    add_library(iris::nccl INTERFACE IMPORTED)
    target_include_directories(iris::nccl INTERFACE ${IRIS_NCCL_INCLUDE})
    target_link_libraries(iris::nccl INTERFACE ${IRIS_NCCL_LIBRARY})
    message(STATUS "NCCL: ${IRIS_NCCL_LIBRARY} (headers in ${IRIS_NCCL_INCLUDE})")
  else()
    message(STATUS "NCCL not found (nccl.h, libnccl.so): NcclComm is left out and --parallel.comm nccl is "
                   "refused; install libnccl-dev or pass -DNCCL_ROOT=DIR")
  endif()
elseif(IRIS_WITH_CUDA)
  message(STATUS "NCCL: off (IRIS_NCCL=OFF): NcclComm is left out and --parallel.comm nccl is refused")
endif()
