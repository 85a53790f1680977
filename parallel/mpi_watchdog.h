// Fail fast instead of hanging (--parallel.timeout_s): every MpiComm operation is started
// non-blocking and completed here. An operation that has not completed within the timeout makes
// this rank ask the other ranks of the group, over a communicator of its own, which operation each
// of them is waiting in; it then logs the operation, the group and the ranks still missing, and
// aborts the whole job (MPI_Abort). A rank that has been waiting for over a second answers such
// questions while it waits, so the report separates ranks stuck elsewhere from ranks that do not
// answer at all (dead, hung, or still computing).
#pragma once
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

namespace iris {

// What an operation is, cheap to make on every call and turned into text only when someone asks (a
// timeout, or another rank's question): "all_reduce #12 of group dp", "send to pp rank 1 (tag 3)".
// Collectives of one group are numbered in the order every member issues them, so members waiting in
// the same one describe it with the same text.
struct CommOp {
  const char* kind = "";              // "all_reduce", ... or "send to" / "recv from"
  const std::string* group = nullptr; // the group's name (owned by the communicator)
  long long seq = 0;                  // collectives: its number in the group
  int peer = -1;                      // send/recv: the group rank it waits for; -1 for a collective
  int tag = 0;
  std::string text() const;
};

class MpiWatchdog {
 public:
  // Collective over MPI_COMM_WORLD (duplicates it for the questions). timeout_s <= 0: no deadline,
  // operations are completed with a plain MPI_Wait.
  explicit MpiWatchdog(double timeout_s);
  ~MpiWatchdog();
  MpiWatchdog(const MpiWatchdog&) = delete;
  MpiWatchdog& operator=(const MpiWatchdog&) = delete;

  double timeout_s() const { return timeout_s_; }

  // Completes `request`, the operation `op` of `comm` (a collective waits for the whole group, a
  // send/recv for op.peer). Past the deadline it reports and calls MPI_Abort; it does not return then.
  void wait(MPI_Request* request, MPI_Comm comm, const CommOp& op);

 private:
  void answer_questions();
  [[noreturn]] void fail(MPI_Comm comm, const CommOp& op, double waited_s);

  double timeout_s_;
  MPI_Comm questions_ = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: questions and answers only
  const CommOp* current_op_ = nullptr;  // what this rank waits for now, for answers
  struct Answer;
  std::vector<std::unique_ptr<Answer>> answers_;  // answers in flight (their buffers must outlive them)
};

}  // namespace iris
