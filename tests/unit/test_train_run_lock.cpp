// RunLock: one holder at a time (a second acquire is refused naming the holder), the record round-trips,
// a lock left by a process that is gone is taken over with a warning, and release empties the record.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/core/error.h"
#include "src/train/run_lock.h"

namespace fs = std::filesystem;
using iris::LockHolder;
using iris::RunLock;

namespace {

std::string contents(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A PID that no process has: a child that has exited and been reaped.
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

class RunLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("iris_run_lock_test_" + std::to_string(::getpid())) / "ck";
    fs::remove_all(dir.parent_path());
  }
  void TearDown() override { fs::remove_all(dir.parent_path()); }
  fs::path dir;
};

TEST_F(RunLockTest, RecordRoundTrips) {
  LockHolder h{"node7", 4242, "1234_5", "2026-01-01T00:00:00Z"};
  const LockHolder back = LockHolder::parse(h.to_text());
  EXPECT_EQ(back.host, "node7");
  EXPECT_EQ(back.pid, 4242);
  EXPECT_EQ(back.slurm_job_id, "1234_5");
  EXPECT_EQ(back.started, "2026-01-01T00:00:00Z");
  EXPECT_TRUE(LockHolder::parse("").empty());
  EXPECT_NE(h.describe().find("Slurm job 1234_5"), std::string::npos);
}

TEST_F(RunLockTest, SecondHolderIsRefusedWithTheRecordAndReleaseEmptiesIt) {
  std::string warning;
  {
    auto lock = RunLock::acquire(dir, &warning);  // creates the directory
    EXPECT_TRUE(warning.empty()) << warning;
    EXPECT_NE(contents(dir / "iris.lock").find("pid=" + std::to_string(::getpid())), std::string::npos);
    try {
      RunLock::acquire(dir, &warning);  // another open file description: flock refuses it
      FAIL() << "a second lock was granted";
    } catch (const iris::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("is in use by another run"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("PID " + std::to_string(::getpid())), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(contents(dir / "iris.lock"), "");
  auto again = RunLock::acquire(dir, &warning);  // released: free again, nothing to warn about
  EXPECT_TRUE(warning.empty()) << warning;
}

TEST_F(RunLockTest, LockLeftByAGoneProcessIsTakenOverWithAWarning) {
  fs::create_directories(dir);
  const long pid = dead_pid();
  LockHolder gone = LockHolder::self();
  gone.pid = pid;
  std::ofstream(dir / "iris.lock") << gone.to_text();
  EXPECT_TRUE(iris::holder_is_gone(gone));
  EXPECT_FALSE(iris::holder_is_gone(LockHolder::self()));
  LockHolder elsewhere{"another-host-" + std::to_string(::getpid()), pid, "", ""};
  EXPECT_FALSE(iris::holder_is_gone(elsewhere));  // cannot tell from here: not gone
  std::string warning;
  auto lock = RunLock::acquire(dir, &warning);
  EXPECT_NE(warning.find("left by a run that ended without releasing it"), std::string::npos) << warning;
  EXPECT_NE(warning.find("PID " + std::to_string(pid)), std::string::npos) << warning;
  EXPECT_NE(contents(dir / "iris.lock").find("pid=" + std::to_string(::getpid())), std::string::npos);
}

TEST_F(RunLockTest, UncreatableDirectoryIsAUserError) {
  fs::create_directories(dir.parent_path());
  std::ofstream(dir) << "a file, not a directory";
  std::string warning;
  EXPECT_THROW(RunLock::acquire(dir / "sub", &warning), iris::UserError);
}

}  // namespace
