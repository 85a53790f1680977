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

class MpiWatchdog {
 public:
  // Collective over MPI_COMM_WORLD (duplicates it for the questions). timeout_s <= 0: no deadline,
  // operations are completed with a plain MPI_Wait.
  explicit MpiWatchdog(double timeout_s);
  ~MpiWatchdog();
  MpiWatchdog(const MpiWatchdog&) = delete;
  MpiWatchdog& operator=(const MpiWatchdog&) = delete;

  double timeout_s() const { return timeout_s_; }

  // Completes `request`, an operation of `comm` described by `op` (e.g. "all_reduce #12 on group
  // dp"). `peers`: the group ranks of `comm` the operation waits for (empty: all of them). Past the
  // deadline it reports and calls MPI_Abort; it does not return then.
  void wait(MPI_Request* request, MPI_Comm comm, const std::string& op, const std::vector<int>& peers = {});

 private:
  void answer_questions();
  [[noreturn]] void fail(MPI_Comm comm, const std::string& op, const std::vector<int>& peers, double waited_s);

  double timeout_s_;
  MPI_Comm questions_ = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD: questions and answers only
  std::string current_op_;              // what this rank waits for now, for answers
  struct Answer;
  std::vector<std::unique_ptr<Answer>> answers_;  // answers in flight (their buffers must outlive them)
};

}  // namespace iris
