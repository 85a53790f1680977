// Training data: the rows of global batch k are the same for dp = 1, 2 and 4 (DP slicing); the
// pretraining windows are T+1 consecutive tokens with targets shifted by one; a blend's shares are
// within 1% of its weights over 10,000 samples and its mapping is a pure function of the index;
// data.paths / data.split errors name the key and the value.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "io/indexed_dataset.h"
#include "src/core/error.h"
#include "src/train/data_loader.h"
#include "src/train/data_sources.h"

namespace iris {
namespace {
namespace fs = std::filesystem;

// Documents of distinct lengths; token i of the stream is (i % 997) + 3, so a window's position in the
// stream can be read off its tokens.
std::string write_stream(const std::string& name, int docs, int tokens_per_doc, int64_t* total = nullptr) {
  const fs::path dir = fs::temp_directory_path() / "iris_train_data_test";
  fs::create_directories(dir);
  const std::string prefix = (dir / name).string();
  io::IndexedDatasetWriter w(prefix, 1000);
  int64_t at = 0;
  for (int d = 0; d < docs; ++d) {
    std::vector<int32_t> doc(tokens_per_doc + d % 3);
    for (auto& t : doc) t = static_cast<int32_t>(at++ % 997) + 3;
    w.add_document(doc);
  }
  w.finalize();
  if (total) *total = at;
  return prefix;
}

TEST(DataParallelSlicing, GlobalBatchHasTheSameRowsForDp124) {
  const std::string prefix = write_stream("dp", 20, 50);
  const int T = 8, global = 16;
  PretrainLoader loader(prefix, T, 7, 1000);
  for (uint64_t k = 0; k < 3; ++k) {
    std::vector<int32_t> reference;
    for (const int dp : {1, 2, 4}) {
      for (const int micro_batch : {1, 2, 4}) {
        const int accum = global / dp / micro_batch;
        if (accum < 1) continue;
        std::vector<int32_t> tokens;  // the global batch as the ranks see it: rank by rank, micro-batch by micro-batch
        for (int d = 0; d < dp; ++d)
          for (int m = 0; m < accum; ++m) {
            Batch b;
            loader.fill(micro_batch_first_sample(k * global, micro_batch, accum, d, m), micro_batch, b);
            tokens.insert(tokens.end(), b.tokens.begin(), b.tokens.end());
          }
        ASSERT_EQ(tokens.size(), static_cast<size_t>(global) * T);
        if (reference.empty()) reference = tokens;
        EXPECT_EQ(tokens, reference) << "batch " << k << " dp " << dp << " micro_batch " << micro_batch;
      }
    }
    // Batches differ from one another (the test would pass trivially otherwise).
    Batch first;
    loader.fill(0, global, first);
    if (k > 0) EXPECT_NE(std::vector<int32_t>(first.tokens), reference);
  }
}

TEST(PretrainLoader, WindowsAreTPlusOneTokensWithShiftedTargets) {
  int64_t total = 0;
  const std::string prefix = write_stream("windows", 10, 30, &total);
  const int T = 16;
  PretrainLoader loader(prefix, T, 3, 1000);
  ASSERT_EQ(loader.num_samples(), static_cast<uint64_t>((total - 1) / T));
  const int n = static_cast<int>(loader.num_samples());
  Batch b;
  loader.fill(0, n, b);
  std::set<uint64_t> starts;
  for (int r = 0; r < n; ++r) {
    const uint64_t start = loader.sample_start(r);
    EXPECT_EQ(start % T, 0u);
    starts.insert(start);
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ(b.tokens[r * T + t], static_cast<int32_t>((start + t) % 997) + 3) << "row " << r << " t " << t;
      EXPECT_EQ(b.targets[r * T + t], static_cast<int32_t>((start + t + 1) % 997) + 3) << "row " << r << " t " << t;
      EXPECT_EQ(b.loss_mask[r * T + t], 1.0f);
    }
  }
  EXPECT_EQ(starts.size(), static_cast<size_t>(n)) << "an epoch visits every window once";
  int moved = 0;
  for (int r = 0; r < n; ++r) moved += loader.sample_start(r) != static_cast<uint64_t>(r) * T;
  EXPECT_GT(moved, n / 2) << "the order is shuffled";
  // The next epoch is another permutation of the same windows.
  std::set<uint64_t> next;
  for (int r = n; r < 2 * n; ++r) next.insert(loader.sample_start(r));
  EXPECT_EQ(next, starts);
}

TEST(PretrainLoader, DocumentRangeKeepsToItsTokens) {
  const std::string prefix = write_stream("range", 10, 30);
  const io::IndexedDataset d = io::IndexedDataset::open(prefix);
  PretrainLoader valid(prefix, 8, 3, 1000, DocRange{8, 10});
  const uint64_t begin = d.sequence_offset(8), end = d.num_tokens();
  for (uint64_t i = 0; i < valid.num_samples(); ++i) {
    EXPECT_GE(valid.sample_start(i), begin);
    EXPECT_LE(valid.sample_start(i) + 9, end);
  }
}

TEST(BlendedSource, SharesWithinOnePercentOfTheWeightsAndPureInTheIndex) {
  const std::string a = write_stream("blend_a", 10, 40), b = write_stream("blend_b", 10, 40),
                    c = write_stream("blend_c", 10, 40);
  const auto blend = parse_blend("0.5 " + a + " 0.3 " + b + " 0.2 " + c);
  ASSERT_EQ(blend.size(), 3u);
  std::vector<double> w;
  std::vector<std::unique_ptr<SampleSource>> parts;
  for (const auto& e : blend) {
    w.push_back(e.weight);
    parts.push_back(std::make_unique<PretrainLoader>(e.prefix, 8, 1, 1000));
  }
  BlendedSource source(w, std::move(parts));
  // Over 10,000 samples from several starting points (a resumed run starts anywhere).
  for (const uint64_t start : {0ull, 12345ull, 65530ull}) {
    std::vector<int> counts(3, 0);
    std::vector<std::set<uint64_t>> seen(3);
    for (uint64_t i = start; i < start + 10000; ++i) {
      const auto [k, within] = source.locate(i);
      ++counts[k];
      EXPECT_TRUE(seen[k].insert(within).second) << "sample " << within << " of dataset " << k << " twice";
    }
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(counts[k] / 10000.0, w[k], 0.01) << "dataset " << k << " from " << start;
  }
  // The rows of a sample do not depend on how it was asked for.
  Batch one, many;
  source.fill(70000, 1, one);
  source.fill(69990, 20, many);
  EXPECT_TRUE(std::equal(one.tokens.begin(), one.tokens.end(), many.tokens.begin() + 10 * 8));
  const auto [k, within] = source.locate(70000);
  Batch direct;
  PretrainLoader(blend[k].prefix, 8, 1, 1000).fill(within, 1, direct);
  EXPECT_EQ(direct.tokens, one.tokens);
}

void expect_user_error(const std::function<void()>& f, const std::string& key, const std::string& value) {
  try {
    f();
    ADD_FAILURE() << "no error for " << value;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
  }
}

TEST(BlendedSource, BadDataPathsNameTheKeyAndValue) {
  expect_user_error([] { parse_blend("0.7 /data/a 0.3"); }, "data.paths", "0.7 /data/a 0.3");
  expect_user_error([] { parse_blend("0.7 /data/a heavy /data/b"); }, "data.paths", "heavy");
  expect_user_error([] { parse_blend("0.7 0.3 /data/a /data/b"); }, "data.paths", "0.3");
  expect_user_error([] { parse_blend("-1 /data/a 2 /data/b"); }, "data.paths", "-1");
  expect_user_error([] { parse_blend(""); }, "data.paths", "item");
  const auto ok = parse_blend("7 /data/a 3 /data/b");
  EXPECT_DOUBLE_EQ(ok[0].weight, 0.7);
  EXPECT_EQ(ok[1].prefix, "/data/b");
}

TEST(DataSplit, SharesAndDocumentRanges) {
  EXPECT_EQ(parse_split(""), std::make_pair(1.0, 0.0));
  const auto s = parse_split("98,2");
  EXPECT_DOUBLE_EQ(s.first, 0.98);
  const DocRange train = split_documents(1000, s, false), valid = split_documents(1000, s, true);
  EXPECT_EQ(train.begin, 0u);
  EXPECT_EQ(train.end, 980u);
  EXPECT_EQ(valid.begin, 980u);
  EXPECT_EQ(valid.end, 1000u);
  expect_user_error([] { parse_split("98"); }, "data.split", "98");
  expect_user_error([] { parse_split("98,x"); }, "data.split", "98,x");
  expect_user_error([] { parse_split("98,2,0"); }, "data.split", "98,2,0");
}

}  // namespace
}  // namespace iris

namespace iris {
namespace {

// data.val_fraction: ceil(fraction × n) documents, drawn by the seed (not the tail), disjoint from the
// training documents and together all of them; the loaders read only their own documents' tokens.
TEST(ValFraction, SeededShuffledSubsetDisjointFromTraining) {
  const uint64_t n = 1000;
  const DocSelection valid = shuffled_documents(n, 0.1, 42, true, "d"), train = shuffled_documents(n, 0.1, 42, false, "d");
  EXPECT_EQ(valid.count(n), 100u);  // HF: ceil(test_size × n)
  EXPECT_EQ(train.count(n), 900u);
  EXPECT_EQ(shuffled_documents(7, 0.1, 1, true, "d").count(7), 1u);  // ceil(0.7)
  std::vector<int> owner(n, 0);
  for (const DocRange& r : valid.runs) for (uint64_t d = r.begin; d < r.end; ++d) owner[d] += 1;
  for (const DocRange& r : train.runs) for (uint64_t d = r.begin; d < r.end; ++d) owner[d] += 2;
  for (uint64_t d = 0; d < n; ++d) ASSERT_TRUE(owner[d] == 1 || owner[d] == 2) << "document " << d;
  EXPECT_GT(valid.runs.size(), 50u) << "a shuffled subset, not a contiguous tail";
  const DocSelection again = shuffled_documents(n, 0.1, 42, true, "d"), other = shuffled_documents(n, 0.1, 43, true, "d");
  ASSERT_EQ(again.runs.size(), valid.runs.size());
  for (size_t i = 0; i < again.runs.size(); ++i) EXPECT_EQ(again.runs[i].begin, valid.runs[i].begin);
  bool differs = other.runs.size() != valid.runs.size();
  for (size_t i = 0; !differs && i < other.runs.size(); ++i) differs = other.runs[i].begin != valid.runs[i].begin;
  EXPECT_TRUE(differs) << "another seed draws another subset";
  EXPECT_THROW(shuffled_documents(1, 0.5, 1, true, "d"), UserError);  // nothing left to train on
}

TEST(ValFraction, PretrainWindowsStayInsideTheirDocuments) {
  // Document d holds only the token d + 3, so each token names its document.
  const fs::path dir = fs::temp_directory_path() / "iris_train_data_test";
  fs::create_directories(dir);
  const std::string prefix = (dir / "val_fraction").string();
  const int docs = 60;
  {
    io::IndexedDatasetWriter w(prefix, 1000);
    for (int d = 0; d < docs; ++d) w.add_document(std::vector<int32_t>(5 + d % 4, d + 3));
    w.finalize();
  }
  const DocSelection vsel = shuffled_documents(docs, 0.2, 9, true, prefix), tsel = shuffled_documents(docs, 0.2, 9, false, prefix);
  std::set<int> vdocs, tdocs;
  for (const DocRange& r : vsel.runs) for (uint64_t d = r.begin; d < r.end; ++d) vdocs.insert(static_cast<int>(d) + 3);
  for (const DocRange& r : tsel.runs) for (uint64_t d = r.begin; d < r.end; ++d) tdocs.insert(static_cast<int>(d) + 3);
  const int T = 4;
  PretrainLoader valid(prefix, T, 1, 1000, vsel), train(prefix, T, 1, 1000, tsel);
  using Side = std::pair<PretrainLoader*, std::set<int>*>;
  for (const auto& [loader, own] : {Side{&valid, &vdocs}, Side{&train, &tdocs}}) {
    Batch b;
    loader->fill(0, static_cast<int>(loader->num_samples()), b);
    std::set<int> seen(b.tokens.begin(), b.tokens.end());
    seen.insert(b.targets.begin(), b.targets.end());
    for (int t : seen) EXPECT_TRUE(own->count(t)) << "token of document " << t - 3 << " read from outside the selection";
    EXPECT_GT(seen.size(), own->size() / 2) << "the windows span the selection";
  }
  // Selected documents' tokens, concatenated: a window crossing two ranges reads both.
  uint64_t tokens = 0;
  for (int d : vdocs) tokens += 5 + (d - 3) % 4;
  EXPECT_EQ(valid.num_tokens(), tokens);
}

}  // namespace
}  // namespace iris
