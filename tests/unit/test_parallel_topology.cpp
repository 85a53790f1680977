// Rank layout: the documented 8-rank example and group lists for several layouts.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "parallel/topology.h"
#include "src/core/error.h"

namespace iris {
namespace {

using V = std::vector<int>;

TEST(Topology, EightRankWorkedExample) {
  // tp = 2, pp = 2, dp = 2, as in the comment of parallel/topology.h.
  const V tp_rank = {0, 1, 0, 1, 0, 1, 0, 1}, dp_rank = {0, 0, 1, 1, 0, 0, 1, 1}, pp_rank = {0, 0, 0, 0, 1, 1, 1, 1};
  for (int r = 0; r < 8; ++r) {
    const Topology t = Topology::make(8, r, 2, 2);
    EXPECT_EQ(t.dp, 2);
    EXPECT_EQ(t.tp_rank, tp_rank[r]) << r;
    EXPECT_EQ(t.dp_rank, dp_rank[r]) << r;
    EXPECT_EQ(t.pp_rank, pp_rank[r]) << r;
    EXPECT_EQ(t.rank_of(t.tp_rank, t.dp_rank, t.pp_rank), r);
  }
  EXPECT_EQ(Topology::make(8, 5, 2, 2).tp_group(), (V{4, 5}));
  EXPECT_EQ(Topology::make(8, 5, 2, 2).dp_group(), (V{5, 7}));
  EXPECT_EQ(Topology::make(8, 5, 2, 2).pp_group(), (V{1, 5}));
  EXPECT_EQ(Topology::make(8, 2, 2, 2).model_parallel_group(), (V{2, 3, 6, 7}));
  EXPECT_EQ(Topology::make(8, 2, 2, 2).next_stage_rank(), 6);
  EXPECT_EQ(Topology::make(8, 6, 2, 2).prev_stage_rank(), 2);
  EXPECT_EQ(Topology::make(8, 6, 2, 2).next_stage_rank(), -1);
}

TEST(Topology, GroupsPartitionTheWorld) {
  for (auto [world, tp, pp] : std::vector<std::tuple<int, int, int>>{{8, 1, 1}, {8, 4, 1}, {8, 1, 4}, {16, 2, 4}, {12, 3, 2}}) {
    std::set<V> tp_groups, dp_groups, pp_groups;
    for (int r = 0; r < world; ++r) {
      const Topology t = Topology::make(world, r, tp, pp);
      tp_groups.insert(t.tp_group());
      dp_groups.insert(t.dp_group());
      pp_groups.insert(t.pp_group());
      const V g = t.tp_group();
      EXPECT_EQ(g[t.tp_rank], r);
      EXPECT_EQ(t.dp_group()[t.dp_rank], r);
      EXPECT_EQ(t.pp_group()[t.pp_rank], r);
      // TP groups are blocks of consecutive ranks (they stay inside a node).
      for (size_t i = 1; i < g.size(); ++i) EXPECT_EQ(g[i], g[i - 1] + 1);
    }
    EXPECT_EQ(static_cast<int>(tp_groups.size()), world / tp);
    EXPECT_EQ(static_cast<int>(pp_groups.size()), world / pp);
    EXPECT_EQ(static_cast<int>(dp_groups.size()), tp * pp);
  }
}

TEST(Topology, InvalidWorldSaysWhatToChange) {
  try {
    Topology::make(6, 0, 4, 1);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of parallel.tp"), std::string::npos) << e.what();
  }
}

TEST(Topology, StageLayers) {
  EXPECT_EQ(stage_layers(8, 2, 1).first, 4);
  EXPECT_EQ(stage_layers(8, 2, 1).last, 8);
  EXPECT_THROW(stage_layers(7, 2, 0), UserError);
  EXPECT_EQ(stage_layers(7, 2, 1, {3, 4}).first, 3);
  EXPECT_EQ(stage_layers(7, 2, 1, {3, 4}).last, 7);
  EXPECT_THROW(stage_layers(7, 2, 1, {3, 3}), UserError);
}

// The colour/key splits a communicator library is given must produce exactly the groups Topology
// lists, in the same order (group rank = the varying coordinate).
TEST(Topology, SplitsReproduceTheGroups) {
  for (auto [tp, pp, world] : {std::tuple{2, 2, 8}, std::tuple{1, 4, 8}, std::tuple{4, 1, 8}, std::tuple{2, 3, 12}}) {
    std::vector<Topology> all;
    for (int r = 0; r < world; ++r) all.push_back(Topology::make(world, r, tp, pp));
    const auto members = [&](int rank, Topology::GroupSplit (Topology::*split)() const) {
      const Topology::GroupSplit mine = (all[rank].*split)();
      std::vector<std::pair<int, int>> keyed;  // (key, rank) of every rank with this colour
      for (const Topology& t : all)
        if ((t.*split)().colour == mine.colour) keyed.emplace_back((t.*split)().key, t.rank);
      std::sort(keyed.begin(), keyed.end());
      std::vector<int> ranks;
      for (auto [key, r] : keyed) ranks.push_back(r);
      return ranks;
    };
    for (int r = 0; r < world; ++r) {
      SCOPED_TRACE(::testing::Message() << "tp " << tp << " pp " << pp << " rank " << r);
      EXPECT_EQ(members(r, &Topology::tp_split), all[r].tp_group());
      EXPECT_EQ(members(r, &Topology::dp_split), all[r].dp_group());
      EXPECT_EQ(members(r, &Topology::pp_split), all[r].pp_group());
      EXPECT_EQ(members(r, &Topology::model_parallel_split), all[r].model_parallel_group());
      const Topology::GroupSplit e = all[r].embedding_split();
      if (all[r].is_first_stage() || all[r].is_last_stage()) {
        const std::vector<int> pipe = all[r].pp_group();
        const std::vector<int> ends =
            pp > 1 ? std::vector<int>{pipe.front(), pipe.back()} : std::vector<int>{pipe.front()};
        EXPECT_EQ(members(r, &Topology::embedding_split), ends);
      } else {
        EXPECT_LT(e.colour, 0);
      }
    }
  }
}

}  // namespace
}  // namespace iris
