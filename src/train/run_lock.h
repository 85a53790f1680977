// One run per checkpoint directory. Rank 0 holds an exclusive flock on <checkpoint.dir>/iris.lock for the
// whole run and keeps a record of the holder in it (host, PID, Slurm job id, start time), so a second run
// on the same directory (a requeued job starting while the old one's ranks still finish, or a mistake) is
// refused at start with the holder's record. A lock left by a process that is gone is taken over with a
// warning. Every rank learns rank 0's verdict, so all ranks refuse together.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "parallel/comm.h"

namespace iris {

// Who holds a lock: the lines "host=", "pid=", "slurm_job_id=", "started=" of the lock file.
struct LockHolder {
  std::string host;
  long pid = 0;
  std::string slurm_job_id;  // "" outside Slurm
  std::string started;       // UTC, ISO 8601
  bool empty() const { return host.empty() && pid == 0; }
  std::string describe() const;  // "host vm, PID 123, Slurm job 45, started 2026-…"
  std::string to_text() const;
  static LockHolder parse(const std::string& text);
  static LockHolder self();  // this process
};

// Whether `h` is certainly gone: same host and no such PID, or its Slurm job is no longer running
// (asked with squeue, when squeue is there). False when unsure (another host, no Slurm to ask).
bool holder_is_gone(const LockHolder& h);

class RunLock {
 public:
  // Not collective: takes the lock on `dir` (created if missing) or throws UserError naming the holder.
  // `warning` receives what was taken over, if anything.
  static std::unique_ptr<RunLock> acquire(const std::filesystem::path& dir, std::string* warning);
  // Collective over `world`: rank 0 acquires, every rank throws the same UserError on refusal; returns the
  // lock on rank 0 and nullptr elsewhere (and everywhere when dir is empty).
  static std::unique_ptr<RunLock> hold_for_run(const std::filesystem::path& dir, Comm& world, int rank);
  ~RunLock();  // clears the record, releases the flock
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  RunLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace iris
