#include "parallel/topology.h"

#include <numeric>

#include "src/core/check.h"

namespace iris {

Topology Topology::make(int world, int rank, int tp, int pp) {
  IRIS_USER_CHECK(tp >= 1 && pp >= 1, "parallel.tp ({}) and parallel.pp ({}) must be at least 1", tp, pp);
  IRIS_USER_CHECK(world % (tp * pp) == 0,
                  "the number of ranks ({}) must be a multiple of parallel.tp × parallel.pp = {} × {} = {}; "
                  "change the rank count or the layout",
                  world, tp, pp, tp * pp);
  IRIS_CHECK(rank >= 0 && rank < world, "rank {} outside world {}", rank, world);
  Topology t;
  t.world = world;
  t.tp = tp;
  t.pp = pp;
  t.dp = world / (tp * pp);
  t.rank = rank;
  t.tp_rank = rank % tp;
  t.dp_rank = (rank / tp) % t.dp;
  t.pp_rank = rank / (tp * t.dp);
  return t;
}

int Topology::rank_of(int tp_r, int dp_r, int pp_r) const { return pp_r * tp * dp + dp_r * tp + tp_r; }

std::vector<int> Topology::tp_group() const {
  std::vector<int> g;
  for (int t = 0; t < tp; ++t) g.push_back(rank_of(t, dp_rank, pp_rank));
  return g;
}

std::vector<int> Topology::dp_group() const {
  std::vector<int> g;
  for (int d = 0; d < dp; ++d) g.push_back(rank_of(tp_rank, d, pp_rank));
  return g;
}

std::vector<int> Topology::pp_group() const {
  std::vector<int> g;
  for (int p = 0; p < pp; ++p) g.push_back(rank_of(tp_rank, dp_rank, p));
  return g;
}

std::vector<int> Topology::model_parallel_group() const {
  std::vector<int> g;
  for (int p = 0; p < pp; ++p)
    for (int t = 0; t < tp; ++t) g.push_back(rank_of(t, dp_rank, p));
  return g;
}

int Topology::next_stage_rank() const { return is_last_stage() ? -1 : rank_of(tp_rank, dp_rank, pp_rank + 1); }
int Topology::prev_stage_rank() const { return is_first_stage() ? -1 : rank_of(tp_rank, dp_rank, pp_rank - 1); }

std::string Topology::describe() const { return fmt::format("tp={} pp={} dp={} (world {})", tp, pp, dp, world); }

Topology::GroupSplit Topology::tp_split() const { return {pp_rank * dp + dp_rank, tp_rank}; }
Topology::GroupSplit Topology::dp_split() const { return {pp_rank * tp + tp_rank, dp_rank}; }
Topology::GroupSplit Topology::pp_split() const { return {dp_rank * tp + tp_rank, pp_rank}; }
Topology::GroupSplit Topology::model_parallel_split() const { return {dp_rank, pp_rank * tp + tp_rank}; }
Topology::GroupSplit Topology::embedding_split() const {
  const bool member = is_first_stage() || is_last_stage();
  return {member ? dp_rank * tp + tp_rank : -1, pp_rank};
}

StageLayers stage_layers(int num_layers, int pp, int stage, const std::vector<int>& explicit_counts) {
  IRIS_CHECK(stage >= 0 && stage < pp, "stage {} outside pp {}", stage, pp);
  if (!explicit_counts.empty()) {
    IRIS_USER_CHECK(static_cast<int>(explicit_counts.size()) == pp,
                    "parallel.stage_layers lists {} stages but parallel.pp = {}", explicit_counts.size(), pp);
    IRIS_USER_CHECK(std::accumulate(explicit_counts.begin(), explicit_counts.end(), 0) == num_layers,
                    "parallel.stage_layers must add up to num_hidden_layers = {}", num_layers);
    for (int n : explicit_counts) IRIS_USER_CHECK(n >= 1, "parallel.stage_layers: every stage needs at least one layer");
    int first = std::accumulate(explicit_counts.begin(), explicit_counts.begin() + stage, 0);
    return {first, first + explicit_counts[stage]};
  }
  IRIS_USER_CHECK(num_layers % pp == 0,
                  "num_hidden_layers = {} is not divisible by parallel.pp = {}; choose another pp or give "
                  "parallel.stage_layers explicitly (e.g. \"3,5\")",
                  num_layers, pp);
  int per = num_layers / pp;
  return {stage * per, (stage + 1) * per};
}

}  // namespace iris
