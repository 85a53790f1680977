// Run under mpirun by comm_collectives.sh: every operation of the communicator interface (parallel/comm.h)
// on MpiComm, blocking and asynchronous, on the world and on the tp/dp/pp groups of a topology, checked
// against values each rank can compute by itself. Exits non-zero (naming the operation) on a mismatch.
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "parallel/topology.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what, int rank) {
  if (!ok) {
    std::fprintf(stderr, "rank %d: FAIL %s\n", rank, what.c_str());
    ++failures;
  }
}

// Rank r of a group contributes value(r, i) at element i.
float value(int r, size_t i) { return static_cast<float>(r * 1000 + static_cast<int>(i % 997)); }

void check_group(iris::Comm& c, int world_rank) {
  const int n = c.size(), me = c.rank();
  const std::string g = c.name() + ": ";
  const size_t count = 1001;  // not a multiple of anything in particular
  float sum_of_ranks = 0;
  for (int r = 0; r < n; ++r) sum_of_ranks += static_cast<float>(r * 1000);

  for (bool async : {false, true}) {
    const std::string mode = async ? " (async)" : "";
    std::vector<float> x(count);
    for (size_t i = 0; i < count; ++i) x[i] = value(me, i);
    if (async) c.iall_reduce(x.data(), count, iris::ReduceOp::Sum)->wait();
    else c.all_reduce(x.data(), count, iris::ReduceOp::Sum);
    bool ok = true;
    for (size_t i = 0; i < count; ++i) ok &= x[i] == sum_of_ranks + n * static_cast<float>(i % 997);
    expect(ok, g + "all_reduce sum" + mode, world_rank);

    std::vector<float> send(count * n), recv(count);
    for (size_t i = 0; i < send.size(); ++i) send[i] = value(me, i);
    if (async) c.ireduce_scatter(send.data(), recv.data(), count)->wait();
    else c.reduce_scatter(send.data(), recv.data(), count);
    ok = true;
    for (size_t i = 0; i < count; ++i) {
      float want = 0;
      for (int r = 0; r < n; ++r) want += value(r, me * count + i);
      ok &= recv[i] == want;
    }
    expect(ok, g + "reduce_scatter" + mode, world_rank);

    std::vector<float> all(count * n);
    for (size_t i = 0; i < count; ++i) all[me * count + i] = value(me, i);  // in place
    if (async) c.iall_gather(all.data() + me * count, all.data(), count)->wait();
    else c.all_gather(all.data() + me * count, all.data(), count);
    ok = true;
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i) ok &= all[r * count + i] == value(r, i);
    expect(ok, g + "all_gather in place" + mode, world_rank);

    const int root = n - 1;
    std::vector<float> b(count, -1.0f);
    if (me == root) for (size_t i = 0; i < count; ++i) b[i] = value(root, i);
    if (async) c.ibroadcast(b.data(), count, root)->wait();
    else c.broadcast(b.data(), count, root);
    ok = true;
    for (size_t i = 0; i < count; ++i) ok &= b[i] == value(root, i);
    expect(ok, g + "broadcast" + mode, world_rank);
  }

  // Reduce in place to each root in turn: the root gets the sum, the others keep their input.
  for (int root = 0; root < n; ++root) {
    std::vector<float> x(count);
    for (size_t i = 0; i < count; ++i) x[i] = value(me, i);
    c.ireduce(x.data(), count, root)->wait();
    bool ok = true;
    for (size_t i = 0; i < count; ++i)
      ok &= x[i] == (me == root ? sum_of_ranks + n * static_cast<float>(i % 997) : value(me, i));
    expect(ok, g + "reduce to root " + std::to_string(root), world_rank);
  }
  // Several reduces in flight at once, to different roots, waited in reverse order.
  {
    std::vector<std::vector<float>> xs(n, std::vector<float>(count));
    std::vector<std::unique_ptr<iris::CommHandle>> handles;
    for (int root = 0; root < n; ++root) {
      for (size_t i = 0; i < count; ++i) xs[root][i] = value(me, i + root);
      handles.push_back(c.ireduce(xs[root].data(), count, root));
    }
    for (size_t h = handles.size(); h-- > 0;) handles[h]->wait();
    bool ok = true;
    for (size_t i = 0; i < count; ++i) {
      float want = 0;
      for (int r = 0; r < n; ++r) want += value(r, i + me);
      ok &= xs[me][i] == want;
    }
    expect(ok, g + "reduces in flight together", world_rank);
  }

  double m = me;
  c.all_reduce(&m, 1, iris::ReduceOp::Max);
  expect(m == n - 1, g + "all_reduce max (double)", world_rank);
  c.barrier();

  // A ring of send/recv: each rank sends to the next and receives from the previous.
  if (n > 1) {
    std::vector<float> out(count), in(count, -1.0f);
    for (size_t i = 0; i < count; ++i) out[i] = value(me, i);
    auto r = c.irecv(in.data(), count, (me + n - 1) % n, 7);
    auto s = c.isend(out.data(), count, (me + 1) % n, 7);
    s->wait();
    r->wait();
    bool ok = true;
    for (size_t i = 0; i < count; ++i) ok &= in[i] == value((me + n - 1) % n, i);
    expect(ok, g + "isend/irecv ring", world_rank);
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int tp = argc > 1 ? std::atoi(argv[1]) : 1, pp = argc > 2 ? std::atoi(argv[2]) : 1;
  {
    const iris::Topology topo = iris::Topology::make(world, rank, tp, pp);
    iris::Communicators c = iris::make_mpi_communicators(topo, false, 60);
    for (iris::Comm* g : {c.world.get(), c.tp.get(), c.dp.get(), c.pp.get()}) check_group(*g, rank);
  }
  int total = failures;
  MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%s: %d failure(s) over %d ranks (tp=%d pp=%d)\n", total ? "FAIL" : "ok", total, world, tp, pp);
  MPI_Finalize();
  return total ? 1 : 0;
}
