#!/usr/bin/env bash
# The communicator interface on MpiComm (blocking and asynchronous all-reduce, reduce-scatter, all-gather,
# broadcast, barrier, send/recv) on the world and every group of two topologies (tests/mpi/comm_check.cpp).
set -euo pipefail
src=$1 build=$2
source "$src/tests/mpi/common.bash"
mpi 4 "$build/bin/mpi_comm_check" 2 1
mpi 8 "$build/bin/mpi_comm_check" 2 2
