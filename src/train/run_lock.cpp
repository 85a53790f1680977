#include "src/train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>

#include "src/core/check.h"
#include "src/core/log.h"

namespace iris {
namespace fs = std::filesystem;

namespace {

std::string this_host() {
  std::array<char, 256> name{};
  return ::gethostname(name.data(), name.size() - 1) == 0 ? std::string(name.data()) : std::string("?");
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string read_all(int fd) {
  std::string text;
  char buf[512];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
    if (text.size() > 4096) break;  // a record is a few lines; anything longer is not ours
  }
  return text;
}

// Replaces the file's contents with `text` (best effort: a full disk leaves the flock, which is what
// excludes other runs, and only loses the record).
void write_record(int fd, const std::string& text, const fs::path& path) {
  const bool ok = ::ftruncate(fd, 0) == 0 && ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  if (!ok) spdlog::warn("could not write the holder record into {}: {}", path.string(), std::strerror(errno));
}

// squeue's view of a job: its state, "" when Slurm no longer knows it, nullopt-like "?" when it cannot ask.
std::string slurm_job_state(const std::string& job) {
  for (char c : job)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '_') return "?";
  const std::string cmd = "squeue -h -j " + job + " -o %T 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "?";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  if (out.find("Invalid job id") != std::string::npos) return "";
  if (rc != 0) return "?";  // no squeue here, or the controller does not answer
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return out;
}

}  // namespace

std::string LockHolder::describe() const {
  return fmt::format("host {}, PID {}, {}, started {}", host, pid,
                     slurm_job_id.empty() ? std::string("not under Slurm") : "Slurm job " + slurm_job_id, started);
}

std::string LockHolder::to_text() const {
  return fmt::format("host={}\npid={}\nslurm_job_id={}\nstarted={}\n", host, pid, slurm_job_id, started);
}

LockHolder LockHolder::parse(const std::string& text) {
  LockHolder h;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "host") h.host = value;
    else if (key == "pid") h.pid = std::atol(value.c_str());
    else if (key == "slurm_job_id") h.slurm_job_id = value;
    else if (key == "started") h.started = value;
  }
  return h;
}

LockHolder LockHolder::self() {
  LockHolder h;
  h.host = this_host();
  h.pid = static_cast<long>(::getpid());
  if (const char* job = std::getenv("SLURM_JOB_ID")) h.slurm_job_id = job;
  h.started = utc_now();
  return h;
}

bool holder_is_gone(const LockHolder& h) {
  if (h.empty()) return true;
  if (h.host == this_host() && h.pid > 0 && ::kill(static_cast<pid_t>(h.pid), 0) != 0 && errno == ESRCH) return true;
  if (h.slurm_job_id.empty()) return false;
  const std::string state = slurm_job_state(h.slurm_job_id);
  return state != "?" && state != "RUNNING" && state != "PENDING" && state != "COMPLETING" && state != "SUSPENDED" &&
         state != "CONFIGURING" && state != "REQUEUED" && state != "RESIZING" && state != "STOPPED";
}

namespace {

// The refusal: the holder is alive (or cannot be shown dead) and holds the flock.
[[noreturn]] void refuse(const fs::path& dir, const fs::path& path, const LockHolder& holder) {
  throw UserError(fmt::format(
      "checkpoint.dir {} is in use by another run ({}; lock file {}). Two runs writing one checkpoint directory "
      "would interleave their steps: wait for that run to end or set another checkpoint.dir; if that run is "
      "certainly gone, delete {}",
      dir.string(), holder.empty() ? std::string("no holder record") : holder.describe(), path.string(),
      path.string()));
}

// A fresh lock file, locked and recorded, renamed over `path`: the takeover of a lock whose flock is still
// held by a process that is gone as far as we can tell (a straggler of an ended job, another NFS client).
int replace_lock_file(const fs::path& path, const LockHolder& me) {
  const fs::path fresh = path.string() + "." + std::to_string(me.pid);
  const int fd = ::open(fresh.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  IRIS_USER_CHECK(fd >= 0, "cannot create the lock file {}: {}", fresh.string(), std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::rename(fresh.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(fresh.c_str());
    throw UserError(fmt::format("cannot replace the stale lock file {}: {}", path.string(), why));
  }
  write_record(fd, me.to_text(), path);
  return fd;
}

}  // namespace

std::unique_ptr<RunLock> RunLock::acquire(const fs::path& dir, std::string* warning) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  IRIS_USER_CHECK(!ec, "cannot create checkpoint.dir {}: {}", dir.string(), ec.message());
  const fs::path path = dir / "iris.lock";
  const LockHolder me = LockHolder::self();
  // A previous start of this same Slurm job (a requeue) may still be finishing: give it a minute.
  for (int waited_s = 0;; ++waited_s) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    IRIS_USER_CHECK(fd >= 0, "cannot open the lock file {}: {}", path.string(), std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      struct stat locked{}, now{};
      if (::fstat(fd, &locked) != 0 || ::stat(path.c_str(), &now) != 0 || locked.st_ino != now.st_ino) {
        ::close(fd);  // replaced by a takeover between our open and our flock: lock the new one
        continue;
      }
      const LockHolder previous = LockHolder::parse(read_all(fd));
      if (!previous.empty() && warning)
        *warning = fmt::format("took over the lock on checkpoint.dir {} left by a run that ended without releasing "
                               "it ({})", dir.string(), previous.describe());
      write_record(fd, me.to_text(), path);
      return std::unique_ptr<RunLock>(new RunLock(path, fd));
    }
    const int err = errno;
    if (err != EWOULDBLOCK) {  // e.g. ENOLCK, EOPNOTSUPP: no flock on this file system
      if (warning)
        *warning = fmt::format("flock is not supported on {} ({}): nothing stops a second run from using this "
                               "checkpoint.dir (on Lustre mount with -o flock; see the README)", path.string(),
                               std::strerror(err));
      write_record(fd, me.to_text(), path);
      return std::unique_ptr<RunLock>(new RunLock(path, fd));
    }
    const LockHolder holder = LockHolder::parse(read_all(fd));
    ::close(fd);
    if (holder_is_gone(holder)) {
      const int fresh = replace_lock_file(path, me);
      if (warning)
        *warning = fmt::format("took over the lock on checkpoint.dir {}: its holder ({}) is gone but the lock was "
                               "still held (a process of an ended job, or another host's)", dir.string(),
                               holder.describe());
      return std::unique_ptr<RunLock>(new RunLock(path, fresh));
    }
    const bool same_job = !me.slurm_job_id.empty() && holder.slurm_job_id == me.slurm_job_id;
    if (!same_job || waited_s >= 60) refuse(dir, path, holder);
    ::sleep(1);
  }
}

std::unique_ptr<RunLock> RunLock::hold_for_run(const fs::path& dir, Comm& world, int rank) {
  if (dir.empty()) return nullptr;
  std::unique_ptr<RunLock> lock;
  std::string refusal;
  if (rank == 0) {
    try {
      std::string warning;
      lock = acquire(dir, &warning);
      if (!warning.empty()) spdlog::warn("{}", warning);
    } catch (const std::exception& e) {
      refusal = e.what();
    }
  }
  // Rank 0's verdict, message included, reaches every rank: they all refuse with the same words.
  float length = static_cast<float>(refusal.size());
  world.broadcast(&length, 1, 0);
  if (length == 0) return lock;
  refusal.resize(static_cast<size_t>(length));
  world.broadcast_bytes(refusal.data(), refusal.size(), 0);
  throw UserError(refusal);
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // An empty record says "released"; the file stays, so a waiting opener and a new one lock the same inode.
  if (::ftruncate(fd_, 0) != 0) spdlog::warn("could not clear the lock record {}: {}", path_.string(), std::strerror(errno));
  ::close(fd_);
}

}  // namespace iris
