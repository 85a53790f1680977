// io/checkpoint: slices written by several rank files reassemble into the global tensor bit for bit,
// damaged files fail with a message naming the file and the tensor, and the directory helpers
// (latest pointer, resolve, prune) behave.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>

#include "io/checkpoint.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using namespace iris::io;

namespace {

const char* kName = "model.layers.0.mlp.up_proj.weight";
constexpr int64_t R = 8, C = 5;  // global (F, C) = (8, 5), column-split over 2 ranks

// Rank r's column block of the global tensor, and a flat optimizer range that straddles rows.
SliceInfo block(int r, const std::string& group, int64_t begin, int64_t end) {
  SliceInfo s;
  s.group = group;
  s.name = kName;
  s.rule = "column";
  s.global_shape = {R, C};
  s.block_offset = {r * R / 2, 0};
  s.block_shape = {R / 2, C};
  s.valid_rows = R / 2;
  s.flat_begin = begin;
  s.flat_end = end;
  return s;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root = fs::temp_directory_path() / ("iris_ckpt_test_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "step_00000007.tmp");
    global.resize(R * C);
    std::iota(global.begin(), global.end(), 0.5f);
    Manifest m;
    m.step = 7;
    m.model_config = {{"vocab_size", 16}};
    for (int r = 0; r < 2; ++r) {
      const fs::path path = root / "step_00000007.tmp" / rank_file_name(r);
      CheckpointFileWriter w(path);
      w.set_attribute("rank", r);
      const float* blk = global.data() + r * (R / 2) * C;
      w.write(block(r, "weights", 0, R / 2 * C), blk);
      // The block's optimizer state split at element 7 (mid-row) between two pieces in the same file.
      w.write(block(r, "exp_avg", 0, 7), blk);
      w.close();
      m.files.push_back({rank_file_name(r), fs::file_size(path), crc32_file(path)});
    }
    for (int r = 0; r < 2; ++r) {
      // exp_avg elements [7, 20) of each block are in files 2 and 3 (the other DP rank).
      const fs::path path = root / "step_00000007.tmp" / rank_file_name(2 + r);
      CheckpointFileWriter w(path);
      w.write(block(r, "exp_avg", 7, R / 2 * C), global.data() + r * (R / 2) * C + 7);
      w.close();
      m.files.push_back({rank_file_name(2 + r), fs::file_size(path), crc32_file(path)});
    }
    finalize_checkpoint(root / "step_00000007.tmp", root / "step_00000007", m);
    write_latest(root, "step_00000007");
    dir = root / "step_00000007";
  }
  void TearDown() override { fs::remove_all(root); }

  fs::path root, dir;
  std::vector<float> global;
};

TEST_F(CheckpointTest, SlicesReassembleBitExact) {
  const CheckpointDir ckpt = CheckpointDir::open(dir);
  EXPECT_EQ(ckpt.manifest().step, 7);
  EXPECT_EQ(ckpt.num_files(), 4u);
  for (const char* group : {"weights", "exp_avg"}) {
    std::vector<float> out(R * C, -1.0f);
    ckpt.read_global(group, kName, out.data(), 0, R);
    EXPECT_EQ(out, global) << group;
  }
  // Only the rows a rank needs (a hyperslab of one file).
  std::vector<float> out(R * C, -1.0f);
  ckpt.read_global("weights", kName, out.data(), 5, 7);
  for (int64_t g = 0; g < R * C; ++g) EXPECT_EQ(out[g], g / C >= 5 && g / C < 7 ? global[g] : -1.0f) << g;
  EXPECT_TRUE(ckpt.verify().empty());
  EXPECT_THROW(ckpt.read_global("exp_avg_sq", kName, out.data(), 0, R), iris::UserError);
}

TEST_F(CheckpointTest, FlippedByteNamesFileAndTensor) {
  const fs::path path = dir / rank_file_name(1);
  haddr_t offset = 0;
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t d = H5Dopen2(f, (std::string("weights/") + kName).c_str(), H5P_DEFAULT);
    ASSERT_GE(d, 0);
    hid_t space = H5Dget_space(d);
    hsize_t chunk_offset[2];
    unsigned mask = 0;
    hsize_t size = 0;
    ASSERT_GE(H5Dget_chunk_info(d, space, 0, chunk_offset, &mask, &offset, &size), 0);
    ASSERT_GT(size, 8u);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
  }
  {
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(offset + 6));
    char c = 0;
    io.read(&c, 1);
    c ^= 0x10;
    io.seekp(static_cast<std::streamoff>(offset + 6));
    io.write(&c, 1);
  }
  const CheckpointDir ckpt = CheckpointDir::open(dir);  // sizes still match
  std::vector<float> out(R * C);
  try {
    ckpt.read_global("weights", kName, out.data(), 0, R);
    FAIL() << "a flipped byte was not detected";
  } catch (const iris::UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(rank_file_name(1)), std::string::npos) << msg;
    EXPECT_NE(msg.find(kName), std::string::npos) << msg;
  }
  const auto problems = ckpt.verify();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("CRC32"), std::string::npos) << problems[0];
}

TEST_F(CheckpointTest, ResolveLatestAutoAndPrune) {
  EXPECT_EQ(resolve_checkpoint("latest", root), dir);
  EXPECT_EQ(resolve_checkpoint("auto", root), dir);
  EXPECT_EQ(resolve_checkpoint(dir.string(), ""), dir);
  EXPECT_EQ(resolve_checkpoint(root.string(), ""), dir);
  EXPECT_EQ(resolve_checkpoint("auto", root / "empty"), fs::path());
  EXPECT_THROW(resolve_checkpoint("latest", root / "empty"), iris::UserError);
  for (const char* s : {"step_00000001", "step_00000003", "step_00000009.tmp"}) fs::create_directories(root / s);
  prune_checkpoints(root, {2, 0});
  EXPECT_FALSE(fs::exists(root / "step_00000001"));
  EXPECT_TRUE(fs::exists(root / "step_00000003"));
  EXPECT_TRUE(fs::exists(root / "step_00000007"));
  EXPECT_FALSE(fs::exists(root / "step_00000009.tmp"));
}

// A step directory whose manifest records `val_loss` (null: not evaluated), enough for the retention rule.
void fake_checkpoint(const fs::path& root, int step, std::optional<double> val_loss) {
  const fs::path d = root / step_dir_name(step);
  fs::create_directories(d);
  Manifest m;
  m.step = step;
  m.val_loss = val_loss;
  std::ofstream(d / "manifest.json") << m.to_json().dump();
}

TEST(CheckpointRetention, KeepsTheNewestAndTheBestAndPointsBestAtTheLowest) {
  const fs::path root = fs::temp_directory_path() / ("iris_keep_best_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fake_checkpoint(root, 2, 3.0);
  fake_checkpoint(root, 4, 1.5);  // the best
  fake_checkpoint(root, 6, 2.0);
  fake_checkpoint(root, 8, std::nullopt);
  EXPECT_EQ(prune_checkpoints(root, {1, 1}), "step_00000004");
  EXPECT_FALSE(fs::exists(root / "step_00000002"));
  EXPECT_TRUE(fs::exists(root / "step_00000004"));
  EXPECT_FALSE(fs::exists(root / "step_00000006"));
  EXPECT_TRUE(fs::exists(root / "step_00000008"));  // the newest
  EXPECT_EQ(resolve_checkpoint("best", root), root / "step_00000004");
  EXPECT_EQ(resolve_checkpoint((root / "best").string(), ""), root / "step_00000004");
  // A better one later replaces it; ties keep the earlier step.
  fake_checkpoint(root, 10, 1.0);
  fake_checkpoint(root, 12, 1.0);
  EXPECT_EQ(prune_checkpoints(root, {1, 1}), "step_00000010");
  EXPECT_FALSE(fs::exists(root / "step_00000004"));
  EXPECT_TRUE(fs::exists(root / "step_00000010"));
  EXPECT_TRUE(fs::exists(root / "step_00000012"));
  EXPECT_EQ(resolve_checkpoint("best", root), root / "step_00000010");
  // keep_best 2 keeps the two lowest besides the newest.
  fake_checkpoint(root, 14, 5.0);
  EXPECT_EQ(prune_checkpoints(root, {1, 2}), "step_00000010");
  EXPECT_TRUE(fs::exists(root / "step_00000010") && fs::exists(root / "step_00000012") && fs::exists(root / "step_00000014"));
  // Without keep_best nothing is ranked and `best` is left alone.
  EXPECT_EQ(prune_checkpoints(root, {1, 0}), "");
  EXPECT_FALSE(fs::exists(root / "step_00000010"));
  EXPECT_THROW(resolve_checkpoint("best", root), iris::UserError);  // it points at a removed checkpoint
  // An old manifest (no val_loss key) reads as not evaluated.
  nlohmann::json j = Manifest{}.to_json();
  j.erase("val_loss");
  EXPECT_FALSE(Manifest::from_json(j, "old").val_loss.has_value());
  fs::remove_all(root);
}

TEST_F(CheckpointTest, MissingManifestOrFileIsAUserError) {
  fs::remove(dir / rank_file_name(2));
  try {
    CheckpointDir::open(dir);
    FAIL();
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("rank_00002.h5 is missing"), std::string::npos) << e.what();
  }
  fs::remove(dir / "manifest.json");
  EXPECT_THROW(CheckpointDir::open(dir), iris::UserError);
}

}  // namespace
