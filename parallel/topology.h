// Rank layout (docs/design.md decision 5): the one place that turns a rank into coordinates and groups.
// Nothing else in Iris does rank arithmetic; it asks a Topology.
#pragma once
#include <string>
#include <vector>

namespace iris {

// world = tp × pp × dp, TP fastest, then DP, then PP (Megatron-LM's default order, so a TP group
// is a block of consecutive ranks and stays inside a node):
//
//   tp_rank = rank % tp
//   dp_rank = (rank / tp) % dp
//   pp_rank = rank / (tp · dp)
//
// Worked example, 8 ranks with tp = 2, pp = 2, dp = 2:
//
//   rank:    0  1  2  3  4  5  6  7
//   tp_rank: 0  1  0  1  0  1  0  1
//   dp_rank: 0  0  1  1  0  0  1  1
//   pp_rank: 0  0  0  0  1  1  1  1
//
//   TP groups: [0 1] [2 3] [4 5] [6 7]
//   DP groups: [0 2] [1 3] [4 6] [5 7]
//   PP groups: [0 4] [1 5] [2 6] [3 7]       (stage 0 → stage 1)
//   model-parallel (TP×PP) groups: [0 1 4 5] [2 3 6 7]
struct Topology {
  int world = 1, tp = 1, pp = 1, dp = 1;
  int rank = 0, tp_rank = 0, pp_rank = 0, dp_rank = 0;

  // Throws UserError when world is not tp·pp·dp-divisible (says which number to change).
  static Topology make(int world, int rank, int tp, int pp);

  int rank_of(int tp_rank, int dp_rank, int pp_rank) const;
  std::vector<int> tp_group() const;   // ranks sharing this rank's (dp, pp), ordered by tp_rank
  std::vector<int> dp_group() const;   // ranks sharing (tp, pp), ordered by dp_rank
  std::vector<int> pp_group() const;   // ranks sharing (tp, dp), ordered by stage
  std::vector<int> model_parallel_group() const;  // ranks sharing dp: all (tp, pp), ordered by rank
  bool is_first_stage() const { return pp_rank == 0; }
  bool is_last_stage() const { return pp_rank == pp - 1; }
  int next_stage_rank() const;  // -1 on the last stage
  int prev_stage_rank() const;  // -1 on the first stage
  std::string describe() const; // "tp=2 pp=2 dp=1 (world 4)"

  // How a communicator library cuts the world into this rank's groups (MPI_Comm_split's colour and
  // key): ranks with equal colour form one group, ordered by key, so the group rank is the coordinate
  // that varies. colour < 0: this rank is in no such group (only the tied-embedding group has those).
  struct GroupSplit {
    int colour = 0, key = 0;
  };
  GroupSplit tp_split() const;              // the tp_group(): colour (pp, dp), key tp_rank
  GroupSplit dp_split() const;              // the dp_group(): colour (pp, tp), key dp_rank
  GroupSplit pp_split() const;              // the pp_group(): colour (dp, tp), key pp_rank
  GroupSplit model_parallel_split() const;  // the model_parallel_group(): colour dp, key (pp, tp)
  // The first and last stage of each pipeline, which hold the two copies of a tied embedding
  // (colour (dp, tp), key pp_rank); colour -1 on the middle stages.
  GroupSplit embedding_split() const;
};

// The layers [first, last) held by pipeline stage `stage`. stage_layers, when non-empty, lists the
// number of layers of each stage explicitly (uneven splits); otherwise L / pp each.
struct StageLayers {
  int first = 0, last = 0;
  int count() const { return last - first; }
};
StageLayers stage_layers(int num_layers, int pp, int stage, const std::vector<int>& explicit_counts = {});

}  // namespace iris
