// io/checkpoint on failure paths: a write that runs out of disk (a file-size limit with SIGXFSZ ignored,
// so writes fail with EFBIG as on a full disk) throws naming the file, and the process then exits with
// the status it chooses instead of crashing in HDF5's exit handler; H5Id closes each id exactly once.
// Edited manifests (a rank file name with ../, negative sizes, a bad layout) are refused by name.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <vector>

#include "io/checkpoint.h"
#include "io/h5_handle.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using namespace iris::io;

namespace {

SliceInfo flat_slice(const std::string& group, int64_t n) {
  SliceInfo s;
  s.group = group;
  s.name = "model.embed_tokens.weight";
  s.rule = "replicated";
  s.global_shape = {n};
  s.block_offset = {0};
  s.block_shape = {n};
  s.valid_rows = n;
  s.flat_begin = 0;
  s.flat_end = n;
  return s;
}

// In a child process: writes `n` floats into `path` under a 64 KiB file-size limit, prints the error and
// exits 2 (as iris-train does for a failed save), or exits 0 if nothing failed.
[[noreturn]] void write_under_size_limit(const fs::path& path, int64_t n, bool close_explicitly) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{64 << 10, 64 << 10};
  setrlimit(RLIMIT_FSIZE, &limit);
  std::vector<float> data(static_cast<size_t>(n), 1.5f);
  try {
    CheckpointFileWriter w(path);
    w.set_attribute("rank", 0);
    w.write(flat_slice("weights", n), data.data());
    w.write(flat_slice("exp_avg", n), data.data());
    if (close_explicitly) w.close();
  } catch (const iris::Error& e) {
    std::fprintf(stderr, "save failed: %s\n", e.what());
    std::exit(2);
  }
  std::exit(0);
}

class CheckpointFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A fresh process per death test: the child re-runs this test from the start, so HDF5 starts there.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    root = fs::temp_directory_path() / ("iris_ckpt_fault_test_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }
  fs::path root;
};

// 1 Mi floats (4 MiB) under a 64 KiB limit: the dataset write itself fails.
TEST_F(CheckpointFaultTest, DataWriteOnFullDiskThrowsAndExitsWithoutASignal) {
  EXPECT_EXIT(write_under_size_limit(root / "rank_00000.h5", 1 << 20, true), ::testing::ExitedWithCode(2),
              "save failed: .*rank_00000.h5");
}

// 20 Ki floats (80 KiB) per dataset: the chunk fits in HDF5's chunk cache, so the failure comes when the
// cache is written (closing the dataset, or the flush in close()), the path that used to leave a dangling
// file id and crash at exit (status 139).
TEST_F(CheckpointFaultTest, FlushOnFullDiskThrowsAndExitsWithoutASignal) {
  EXPECT_EXIT(write_under_size_limit(root / "rank_00000.h5", 20 << 10, true), ::testing::ExitedWithCode(2),
              "save failed: .*(closing checkpoint file|writing tensor).*rank_00000.h5");
}

// The same failure with no close(): the destructor closes the file during stack unwinding.
TEST_F(CheckpointFaultTest, WriterDestroyedAfterAFailedWriteExitsWithoutASignal) {
  EXPECT_EXIT(write_under_size_limit(root / "rank_00000.h5", 1 << 20, false), ::testing::ExitedWithCode(2),
              "save failed: .*rank_00000.h5");
}

// Damaged or missing files: the reader throws UserError (closing what it opened); a good file reads after.
TEST_F(CheckpointFaultTest, UnreadableFilesThrowAndAGoodOneReadsAfter) {
  {
    std::FILE* f = std::fopen((root / "junk.h5").c_str(), "wb");
    std::fputs("not an HDF5 file", f);
    std::fclose(f);
  }
  EXPECT_THROW(CheckpointFileReader(root / "junk.h5"), iris::UserError);
  EXPECT_THROW(CheckpointFileReader(root / "absent.h5"), iris::UserError);
  std::vector<float> data(64, 2.0f);
  {
    CheckpointFileWriter w(root / "good.h5");
    w.write(flat_slice("weights", 64), data.data());
    w.close();
  }
  CheckpointFileReader r(root / "good.h5");
  ASSERT_EQ(r.slices().size(), 1u);
  std::vector<float> back(64);
  r.read(r.slices()[0], back.data());
  EXPECT_EQ(back, data);
}

int closes = 0;
int count_close(int64_t) { return ++closes, 0; }

TEST(H5Id, ClosesExactlyOnceAndMoves) {
  closes = 0;
  {
    H5Id a(7, count_close);
    H5Id b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), 7);
    H5Id c;
    c = std::move(b);
    EXPECT_EQ(closes, 0);
    EXPECT_EQ(c.close(), 0);
    EXPECT_EQ(closes, 1);
    EXPECT_FALSE(c.valid());
  }
  EXPECT_EQ(closes, 1);
  { H5Id d(-1, count_close); }
  EXPECT_EQ(closes, 1);  // an invalid id is never closed
}

}  // namespace

namespace {

// Hostile manifests: every edit is refused with a UserError naming the manifest and what is wrong, and
// none makes the reader look outside the checkpoint directory.
TEST(CheckpointManifest, EditedManifestsAreRefusedByName) {
  Manifest good;
  good.step = 4;
  good.model_config = {{"vocab_size", 16}};
  good.files = {{rank_file_name(0), 100, 7}};
  const nlohmann::json base = good.to_json();
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"parent dir", [](nlohmann::json& j) { j["files"][0]["name"] = "../rank_00000.h5"; }, "not a plain file name"},
      {"absolute", [](nlohmann::json& j) { j["files"][0]["name"] = "/etc/passwd"; }, "not a plain file name"},
      {"dot-dot", [](nlohmann::json& j) { j["files"][0]["name"] = ".."; }, "not a plain file name"},
      {"empty name", [](nlohmann::json& j) { j["files"][0]["name"] = ""; }, "not a plain file name"},
      {"negative size", [](nlohmann::json& j) { j["files"][0]["size"] = -5; }, "non-negative size"},
      {"string size", [](nlohmann::json& j) { j["files"][0]["size"] = "100"; }, "non-negative size"},
      {"zero tp", [](nlohmann::json& j) { j["layout"]["tp"] = 0; }, "must be positive"},
      {"no step", [](nlohmann::json& j) { j.erase("step"); }, "malformed manifest"},
      {"other format", [](nlohmann::json& j) { j["format"] = "zip"; }, "not an Iris checkpoint manifest"},
      {"future version", [](nlohmann::json& j) { j["format_version"] = 99; }, "version 99 is not supported"},
  };
  for (const auto& c : cases) {
    nlohmann::json j = base;
    c.edit(j);
    try {
      Manifest::from_json(j, "ck/step_00000004/manifest.json");
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const iris::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("ck/step_00000004/manifest.json"), std::string::npos) << c.what << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << c.what << ": " << e.what();
    }
  }
  EXPECT_EQ(Manifest::from_json(base, "ok").files.at(0).name, rank_file_name(0));
}

}  // namespace
