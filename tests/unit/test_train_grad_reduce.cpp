// The overlapped ZeRO-1 gradient reduction (src/train/grad_reduce.h): its buckets, when it issues them,
// and the stage backward's promise it relies on (GradsReady: gradients reported ready do not change
// afterwards). Under mpirun, tests/mpi/overlap_grad_reduce.sh compares whole runs with and without it.
#include <gtest/gtest.h>

#include <cstring>

#include "parallel/offline_comm.h"
#include "src/train/grad_reduce.h"
#include "tests/unit/stage_test_util.h"

namespace iris {
namespace {

TEST(OverlapBuckets, CoverEveryElementOnceInsideOneShardInDescendingOrder) {
  struct Case {
    size_t padded;
    int dp;
    size_t bucket;
  };
  for (const Case& c : {Case{12, 2, 4}, Case{12, 2, 5}, Case{12, 3, 100}, Case{1000, 4, 7}, Case{8, 8, 1}, Case{6, 2, 3}}) {
    SCOPED_TRACE(testing::Message() << "padded " << c.padded << " dp " << c.dp << " bucket " << c.bucket);
    const std::vector<GradBucket> buckets = overlap_buckets(c.padded, c.dp, c.bucket);
    const size_t shard = c.padded / c.dp;
    std::vector<int> covered(c.padded, 0);
    for (size_t i = 0; i < buckets.size(); ++i) {
      const GradBucket& b = buckets[i];
      ASSERT_LT(b.begin, b.end);
      ASSERT_LE(b.end - b.begin, c.bucket);
      EXPECT_EQ(static_cast<size_t>(b.owner), b.begin / shard) << "owner of the bucket's first element";
      EXPECT_EQ(static_cast<size_t>(b.owner), (b.end - 1) / shard) << "the bucket crosses a shard boundary";
      if (i > 0) EXPECT_EQ(b.end, buckets[i - 1].begin) << "not descending and adjacent";
      for (size_t e = b.begin; e < b.end; ++e) ++covered[e];
    }
    for (size_t e = 0; e < c.padded; ++e) ASSERT_EQ(covered[e], 1) << "element " << e;
    // Each shard is cut into ceil(shard / bucket) runs, no more.
    EXPECT_EQ(buckets.size(), c.dp * ((shard + c.bucket - 1) / c.bucket));
  }
}

// Records each reduce (offset into the buffer, count, root) and each wait; anything else throws.
class RecordingComm : public OfflineComm {
 public:
  struct Reduce {
    const float* data;
    size_t count;
    int root;
    bool waited = false;
  };
  std::vector<Reduce> reduces;

  RecordingComm() : OfflineComm(0, 4, "dp (recording)") {}
  std::unique_ptr<CommHandle> ireduce(float* data, size_t count, int root) override {
    reduces.push_back({data, count, root});
    return std::make_unique<Handle>(this, reduces.size() - 1);
  }

 private:
  struct Handle : CommHandle {
    Handle(RecordingComm* c, size_t i) : comm(c), index(i) {}
    void wait() override { comm->reduces[index].waited = true; }
    RecordingComm* comm;
    size_t index;
  };
};

TEST(OverlappedGradReduce, IssuesExactlyTheBucketsReportedReadyThenTheRest) {
  RecordingComm comm;  // dp 4
  const size_t padded = 40, bucket = 3;  // shards of 10: runs 3, 3, 3, 1
  OverlappedGradReduce reduce(&comm, padded, bucket);
  std::vector<float> grads(padded);
  auto issued_from = [&](size_t offset) {  // every issued bucket starts at or past offset
    for (const auto& r : comm.reduces)
      if (static_cast<size_t>(r.data - grads.data()) < offset) return false;
    return true;
  };
  for (int step = 0; step < 2; ++step) {  // the object is reused from step to step
    comm.reduces.clear();
    reduce.begin(grads.data());
    EXPECT_TRUE(comm.reduces.empty());
    reduce.ready_from(35);  // shard 3's runs [36, 39) [39, 40)
    ASSERT_EQ(comm.reduces.size(), 2u);
    EXPECT_EQ(comm.reduces[0].data, grads.data() + 39);
    EXPECT_EQ(comm.reduces[0].count, 1u);
    EXPECT_EQ(comm.reduces[1].data, grads.data() + 36);
    EXPECT_EQ(comm.reduces[1].count, 3u);
    EXPECT_EQ(comm.reduces[1].root, 3);
    reduce.ready_from(35);  // nothing new
    EXPECT_EQ(comm.reduces.size(), 2u);
    reduce.ready_from(20);  // the rest of shard 3, all of shard 2
    EXPECT_EQ(comm.reduces.size(), 8u);
    EXPECT_TRUE(issued_from(20));
    EXPECT_EQ(comm.reduces.back().data, grads.data() + 20);
    EXPECT_EQ(comm.reduces.back().root, 2);
    for (const auto& r : comm.reduces) EXPECT_FALSE(r.waited) << "nothing waits before finish";
    EXPECT_EQ(reduce.issued(), 8u);
    reduce.finish();
    EXPECT_EQ(comm.reduces.size(), reduce.buckets().size());
    size_t total = 0;
    for (const auto& r : comm.reduces) {
      EXPECT_TRUE(r.waited);
      total += r.count;
    }
    EXPECT_EQ(total, padded);
  }
  reduce.begin(grads.data());
  reduce.ready_from(20);
  EXPECT_THROW(reduce.ready_from(30), Error) << "an offset that grows again must be refused";
}

// The stage's side: after each report, grads[offset, end) never change again in that backward, the
// reports decrease (norm, then every layer's first tensor), and the embedding is never reported.
class GradsReadyReports : public ::testing::TestWithParam<std::tuple<bool, int, int>> {};

TEST_P(GradsReadyReports, ReportedGradientsAreFinal) {
  const auto [tied, pp, stage] = GetParam();
  const LlamaConfig c = test::tiny_config(tied);
  test::Stage st(c, pp, stage);
  const test::Batch batch(5);
  auto acts = st.model.make_activations();
  std::vector<float> input(static_cast<size_t>(test::N) * c.hidden_size), dout(input.size()), dinput(input.size());
  for (size_t i = 0; i < input.size(); ++i) {
    input[i] = static_cast<float>(random_normal(21, 0, i));
    dout[i] = 0.1f * static_cast<float>(random_normal(22, 0, i));
  }
  for (size_t i = 0; i < st.grads.size(); ++i) st.grads[i] = static_cast<float>(random_normal(23, 0, i));  // accumulated before
  st.model.forward(*acts, st.params.data(), batch.view(), input.data());
  const std::vector<float> before = st.grads;
  std::vector<size_t> offsets;
  std::vector<std::vector<float>> snapshots;
  st.model.backward(*acts, st.params.data(), st.grads.data(), batch.view(), dout.data(), dinput.data(),
                    [&](size_t offset) {
                      offsets.push_back(offset);
                      snapshots.emplace_back(st.grads.begin() + offset, st.grads.end());
                    });

  const StageOffsets o = stage_offsets(c, st.topo, st.table, st.layers);
  std::vector<size_t> want;
  if (st.topo.is_last_stage()) want.push_back(o.norm);
  for (size_t l = o.layers.size(); l-- > 0;) want.push_back(o.layers[l].ln1);
  EXPECT_EQ(offsets, want);
  for (size_t i = 0; i < offsets.size(); ++i) {
    const size_t n = st.grads.size() - offsets[i];
    EXPECT_EQ(std::memcmp(snapshots[i].data(), st.grads.data() + offsets[i], n * sizeof(float)), 0)
        << "gradients from " << offsets[i] << " changed after they were reported ready";
  }
  // Not vacuous: what each report adds to the ready region was written by this backward (it changed).
  ASSERT_FALSE(offsets.empty());
  for (size_t i = 0; i < offsets.size(); ++i) {
    const size_t end = i == 0 ? st.grads.size() : offsets[i - 1];
    bool changed = false;
    for (size_t e = offsets[i]; e < end; ++e) changed |= st.grads[e] != before[e];
    EXPECT_TRUE(changed) << "report " << i << ": [" << offsets[i] << ", " << end << ") was not written";
  }
  if (const ParamEntry* e = st.table.find("model.embed_tokens.weight")) EXPECT_LE(e->offset + e->numel, offsets.back());
}

INSTANTIATE_TEST_SUITE_P(Stages, GradsReadyReports,
                         ::testing::Values(std::make_tuple(false, 1, 0), std::make_tuple(true, 1, 0),
                                           std::make_tuple(false, 2, 0), std::make_tuple(false, 2, 1),
                                           std::make_tuple(true, 2, 1)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "tied" : "untied") + "_pp" +
                                  std::to_string(std::get<1>(info.param)) + "_stage" +
                                  std::to_string(std::get<2>(info.param));
                         });

}  // namespace
}  // namespace iris
