#include "parallel/mpi_watchdog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "src/core/check.h"

namespace iris {
namespace {

constexpr int kQuestionTag = 1;  // "what are you waiting for?" (one int, unused)
constexpr int kAnswerTag = 2;    // the operation the answering rank waits in (text)
constexpr int kAnswerBytes = 256;
constexpr double kAnswerAfterS = 1.0;  // ranks answer once they have waited this long
constexpr int kAskWorldUpTo = 256;     // in larger jobs only the group is asked (questions are O(ranks))

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

std::string CommOp::text() const {
  if (peer >= 0) return fmt::format("{} {} rank {} (tag {})", kind, *group, peer, tag);
  return fmt::format("{} #{} of group {}", kind, seq, *group);
}

struct MpiWatchdog::Answer {
  std::array<char, kAnswerBytes> text{};
  MPI_Request request = MPI_REQUEST_NULL;
};

MpiWatchdog::MpiWatchdog(double timeout_s) : timeout_s_(timeout_s) {
  IRIS_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &questions_));
  MPI_Comm_set_errhandler(questions_, MPI_ERRORS_RETURN);
}

MpiWatchdog::~MpiWatchdog() {
  // Answers still in flight went to ranks that stopped asking; they are not waited for.
  for (auto& a : answers_)
    if (a->request != MPI_REQUEST_NULL) MPI_Request_free(&a->request);
  if (questions_ != MPI_COMM_NULL) MPI_Comm_free(&questions_);
}

void MpiWatchdog::wait(MPI_Request* request, MPI_Comm comm, const CommOp& op) {
  if (timeout_s_ <= 0) {
    IRIS_MPI_CHECK(MPI_Wait(request, MPI_STATUS_IGNORE));
    return;
  }
  const Clock::time_point start = Clock::now();
  current_op_ = &op;
  for (;;) {
    int done = 0;
    IRIS_MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    if (done) break;
    const double waited = seconds_since(start);
    if (waited > timeout_s_) fail(comm, op, waited);
    if (waited > kAnswerAfterS) answer_questions();
    // Spin while the operation is likely to finish soon; past that, give the core to the other ranks
    // (they may share it) and poll at most every millisecond.
    if (waited < 2e-3) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(waited < 0.1 ? 100 : 1000));
    }
  }
  current_op_ = nullptr;
}

void MpiWatchdog::answer_questions() {
  for (;;) {
    int pending = 0;
    MPI_Status status;
    IRIS_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, kQuestionTag, questions_, &pending, &status));
    if (!pending) break;
    int unused = 0;
    IRIS_MPI_CHECK(MPI_Recv(&unused, 1, MPI_INT, status.MPI_SOURCE, kQuestionTag, questions_, MPI_STATUS_IGNORE));
    auto answer = std::make_unique<Answer>();
    if (current_op_) std::strncpy(answer->text.data(), current_op_->text().c_str(), kAnswerBytes - 1);
    IRIS_MPI_CHECK(MPI_Isend(answer->text.data(), kAnswerBytes, MPI_CHAR, status.MPI_SOURCE, kAnswerTag, questions_,
                             &answer->request));
    answers_.push_back(std::move(answer));
  }
}

void MpiWatchdog::fail(MPI_Comm comm, const CommOp& what, double waited_s) {
  const std::string op = what.text();
  int group_rank = 0, group_size = 1;
  MPI_Comm_rank(comm, &group_rank);
  MPI_Comm_size(comm, &group_size);
  std::vector<int> members;
  if (what.peer >= 0) members.push_back(what.peer);
  for (int r = 0; what.peer < 0 && r < group_size; ++r)
    if (r != group_rank) members.push_back(r);
  std::vector<int> world(members.size());
  MPI_Group group, world_group;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world_group);
  MPI_Group_translate_ranks(group, static_cast<int>(members.size()), members.data(), world_group, world.data());
  spdlog::error("{} has not completed after {:.1f} s (parallel.timeout_s = {}); asking {} rank(s) what they wait for",
                op, waited_s, timeout_s_, members.size());

  // Ask the group, and in jobs of up to kAskWorldUpTo ranks every rank: a rank that hangs elsewhere
  // (in another group's operation) is then named too, not only the group member waiting for it.
  int world_rank = 0, world_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  std::vector<int> asked = world;
  if (world_size <= kAskWorldUpTo)
    for (int r = 0; r < world_size; ++r)
      if (r != world_rank && std::find(asked.begin(), asked.end(), r) == asked.end()) asked.push_back(r);
  static int question = 0;
  std::vector<MPI_Request> questions(asked.size(), MPI_REQUEST_NULL);
  for (size_t i = 0; i < asked.size(); ++i)
    MPI_Isend(&question, 1, MPI_INT, asked[i], kQuestionTag, questions_, &questions[i]);
  // Ranks that wait answer within about a second; give them a little more.
  const double grace = std::clamp(timeout_s_ / 4, 2.0, 10.0);
  std::map<int, std::string> answered;  // world rank -> what it waits in
  const Clock::time_point start = Clock::now();
  while (answered.size() < asked.size() && seconds_since(start) < grace) {
    int pending = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, kAnswerTag, questions_, &pending, &status);
    if (pending) {
      std::array<char, kAnswerBytes> text{};
      MPI_Recv(text.data(), kAnswerBytes, MPI_CHAR, status.MPI_SOURCE, kAnswerTag, questions_, MPI_STATUS_IGNORE);
      answered[status.MPI_SOURCE] = text[0] ? std::string(text.data()) : std::string("nothing (between operations)");
    } else {
      answer_questions();  // another rank that timed out may be asking us
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Present: waiting in this very collective. For a send/recv the peer is missing by definition (had it
  // posted the matching operation, this one would have completed).
  const bool point_to_point = what.peer >= 0;
  constexpr const char* kSilent = "no answer (dead, hung, or still computing)";
  std::string missing, silent;
  for (size_t i = 0; i < world.size(); ++i) {
    const auto it = answered.find(world[i]);
    const bool present = !point_to_point && it != answered.end() && it->second == op;
    spdlog::error("  rank {} (group rank {}): {}", world[i], members[i], it == answered.end() ? kSilent : "waiting in " + it->second);
    if (!present) missing += fmt::format("{}rank {}", missing.empty() ? "" : ", ", world[i]);
  }
  for (int r : asked)
    if (!answered.count(r)) silent += fmt::format("{}rank {}", silent.empty() ? "" : ", ", r);
  spdlog::error("{}: ranks still missing: {}; ranks that did not answer at all: {}; aborting the job", op,
                missing.empty() ? "none" : missing, silent.empty() ? "none" : silent);
  spdlog::default_logger()->flush();
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return; keep [[noreturn]] honest if it ever does
}

}  // namespace iris
