// Pipeline-parallel schedule as data (docs/design.md decision 7): a pure function lists, for one stage, the actions
// it performs in one optimizer step; an executor runs the list. Stages are pipeline indices
// 0 … pp−1 (activations flow 0 → pp−1, gradients back); turning them into ranks is topology's job.
#pragma once
#include <string>
#include <vector>

namespace iris {

// Agree: a collective of every rank of the job (not a transfer between neighbours), placed by
// with_agreement_points where all stages can meet; the trainer uses it to agree on stopping mid-step
// (the executor starts one there and finishes it pp − 1 points later: pipeline_executor.h).
enum class ActionKind { RecvForward, Forward, SendForward, RecvBackward, Backward, SendBackward, Agree };

struct PipelineAction {
  ActionKind kind;
  int micro_batch;
  friend bool operator==(const PipelineAction&, const PipelineAction&) = default;
};

// 1F1B (PipeDream-Flush; Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on
// GPU Clusters Using Megatron-LM", sec. 2.2), for stage s of pp with m micro-batches:
//   warm-up    w = min(pp − s − 1, m) forwards: [recvF i] F i [sendF i]
//   steady     r = m − w steps, step j runs forward w + j then backward j
//   cool-down  the remaining w backwards: [recvB j] B j [sendB j]
// (recvF only on s > 0, sendF/recvB only on s < pp − 1, sendB only on s > 0; the last stage's
// backward starts from the loss.) pp = 1 gives F0 B0 F1 B1 …
//
// Transfer order. In a steady step the stage does, as Megatron's paired calls do,
//   F k, sendF k, recvB j   ("send forward, then receive backward")
//   B j, recvF k+1, sendB j ("receive the next forward, then send backward"; not in the last step)
// i.e. recvF k+1 is hoisted above sendB j. Then, for every pair of neighbouring stages, the
// transfers between them appear in the same order in both lists (stage s: sendF 0 … sendF j+w,
// recvB j, …; stage s+1: recvF 0 … recvF j+w, sendB j, …). That is enough for deadlock freedom
// even when every send blocks until its receive is posted (rendezvous): if all unfinished stages
// were blocked, a stage blocked towards s+1 would need s+1 blocked towards s+2 (on their shared
// link both would sit at the same, matching transfer), and so on up to the last stage, which has no
// s+2. simulate_schedules checks this for every stage together.
//
// Contract for the executor (MPI isend/irecv, NCCL send/recv):
//   1. Run the actions of the list in order, one at a time. Nothing may be reordered across a
//      transfer; in particular do not fuse "sendB j" with the hoisted "recvF k+1" into one blocking
//      exchange with a different order on the other side.
//   2. A Recv must complete before the compute action that reads its buffer (waiting at once is
//      simplest); it may be posted earlier if its buffer is free by then.
//   3. A Send may complete (be waited on) later than its own position — that only loosens the
//      rendezvous model the list is verified under — but its buffer must not be overwritten before
//      the wait, and every send must be waited on before the step ends. Waiting on each send at once
//      (plain blocking send, or unbatched NCCL send) is also deadlock-free.
//   4. Between two stages, transfers in one direction are all of one kind (activations forward,
//      gradients backward) and occur in list order, so MPI's non-overtaking rule matches them; a tag
//      derived from (kind, micro-batch) is still recommended so that a bug shows as a hang at the
//      wrong transfer rather than silently mixed data.
//   5. Allocate max_in_flight(list) activation sets. Reusing set (micro_batch mod sets) is safe: the
//      hoisted recvF k+1 lands in the set of micro-batch j, whose backward has just finished.
// Throws UserError unless pp ≥ 1, 0 ≤ stage < pp and micro_batches ≥ 1.
std::vector<PipelineAction> one_f_one_b_schedule(int pp, int stage, int micro_batches);

// The list with an Agree action after each micro-batch's backward but the last ("agree j"): right
// after B j on the first stage, after sendB j on the others (past the recvF hoisted above it). For 1F1B lists these points
// form a consistent cut of all stages — every transfer before a stage's agree j meets its partner
// before the neighbour's agree j — so a collective there cannot deadlock, even with rendezvous sends;
// simulate_schedules checks it. A step abandoned at agree j leaves no transfer half done.
std::vector<PipelineAction> with_agreement_points(const std::vector<PipelineAction>& actions);

// The most micro-batches whose activations are alive at once on a stage: a micro-batch is alive from
// its first action (RecvForward, which fills the stage input kept for backward, or Forward on
// stage 0) until its Backward completes. 1F1B gives min(pp − stage, micro_batches).
int max_in_flight(const std::vector<PipelineAction>& actions);

// Runs all stages' lists together, a Send completing only when the neighbour reaches the matching
// Recv (rendezvous; compute actions always complete; an Agree completes when every stage is at an
// Agree, which must then be of the same micro-batch, else "agreement mismatch: ..."). Returns "" when every stage finishes, else
// what went wrong, naming the stage and action, e.g.
//   "deadlock: stage 0 blocked on sendF1 (stage 1 is at sendB0); stage 1 blocked on sendB0 (stage 0 is at sendF1)"
//   "mismatch: stage 0 sendF2 meets stage 1 recvF1"
// Before simulating it checks each list on its own: per_stage.size() == pp, transfers only towards
// existing neighbours, micro-batches in [0, micro_batches), every Forward and Backward exactly once,
// and the data dependencies (recvF i before F i, F i before sendF i and B i, recvB i before B i,
// B i before sendB i).
std::string simulate_schedules(int pp, int micro_batches, const std::vector<std::vector<PipelineAction>>& per_stage);

std::string to_string(const PipelineAction& action);               // "F3", "B0", "recvF2", "sendB1", "agree0"
std::string to_string(const std::vector<PipelineAction>& actions); // "F0 sendF0 recvB0 B0"

}  // namespace iris
