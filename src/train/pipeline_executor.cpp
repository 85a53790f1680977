#include "src/train/pipeline_executor.h"

#include "src/core/check.h"
#if IRIS_WITH_CUDA
#include "src/train/cuda/cuda_stage_traits.h"
#endif

namespace iris {
namespace {
int forward_tag(int mb) { return 2 * mb; }
int backward_tag(int mb) { return 2 * mb + 1; }

// The agreements of one run() or forward_only(): started at each point, finished `lag` points later.
class Agreements {
 public:
  Agreements(const StopAgreement& stop, int lag) : stop_(stop), lag_(lag) {}
  // At an agreement point: true when the agreement finished here says stop.
  bool at_point() {
    if (!stop_) return false;
    stop_.start();
    ++pending_;
    if (pending_ <= lag_) return false;
    --pending_;
    return stop_.finish_oldest();
  }
  // Finishes what is still pending (every rank has the same number left).
  void finish_all() {
    for (; pending_ > 0; --pending_) stop_.finish_oldest();
  }

 private:
  const StopAgreement& stop_;
  int lag_, pending_ = 0;
};
}  // namespace

template <class Stage>
PipelineExecutorT<Stage>::PipelineExecutorT(Stage& stage, const Topology& topo, Comm* pp, int micro_batches)
    : stage_(stage), topo_(topo), pp_(pp), micro_batches_(micro_batches) {
  actions_ = with_agreement_points(one_f_one_b_schedule(topo.pp, topo.pp_rank, micro_batches));
  const int sets = max_in_flight(actions_);
  // Elements per transfer buffer: N·C, rounded up to whole floats of bytes.
  const size_t NC = transfer_floats<Element>(static_cast<size_t>(stage.rows()) * stage.hidden()) * sizeof(float) /
                    sizeof(Element);
  for (int s = 0; s < sets; ++s) {
    acts_.push_back(stage.make_activations());
    if (!topo.is_first_stage()) {
      input_.emplace_back(NC);
      dinput_.emplace_back(NC);
    }
  }
  if (!topo.is_last_stage()) doutput_ = Buffer(NC);
  pending_sends_.resize(2 * sets);
}

template <class Stage>
PipelineRun PipelineExecutorT<Stage>::run(const Element* params, Grad* grads,
                                          const std::function<MicroBatch(int)>& batch, const StopAgreement& stop,
                                          const GradsReady& ready) {
  const int sets = static_cast<int>(acts_.size());
  const size_t NC = transfer_floats<Element>(static_cast<size_t>(stage_.rows()) * stage_.hidden());  // floats sent
  const int prev = topo_.pp_rank - 1, next = topo_.pp_rank + 1;  // group ranks in the PP group = stage index
  auto wait_send = [&](std::unique_ptr<CommHandle>& h) {
    if (h) {
      h->wait();
      h.reset();
    }
  };
  PipelineRun result;
  Agreements agreements(stop, topo_.pp - 1);
  for (const PipelineAction& a : actions_) {
    const int slot = a.micro_batch % sets;
    auto& acts = *acts_[slot];
    switch (a.kind) {
      case ActionKind::RecvForward:
        pp_->irecv(floats(input_[slot].data()), NC, prev, forward_tag(a.micro_batch))->wait();
        break;
      case ActionKind::Forward:
        wait_send(pending_sends_[2 * slot]);  // the slot's previous output must have left before it is overwritten
        result.loss += stage_.forward(acts, params, batch(a.micro_batch),
                                      topo_.is_first_stage() ? nullptr : input_[slot].data());
        break;
      case ActionKind::SendForward:
        pending_sends_[2 * slot] = pp_->isend(floats(stage_.output(acts)), NC, next, forward_tag(a.micro_batch));
        // NCCL queues sends: issue it at its place in the list (deadlock-free, pipeline_schedule.h), so
        // no send is held back while this rank blocks in a receive or in the agreement collective.
        pp_->flush();
        break;
      case ActionKind::RecvBackward:
        pp_->irecv(floats(doutput_.data()), NC, next, backward_tag(a.micro_batch))->wait();
        break;
      case ActionKind::Backward:
        wait_send(pending_sends_[2 * slot + 1]);
        stage_.backward(acts, params, grads, batch(a.micro_batch), topo_.is_last_stage() ? nullptr : doutput_.data(),
                        topo_.is_first_stage() ? nullptr : dinput_[slot].data(),
                        a.micro_batch == micro_batches_ - 1 ? ready : GradsReady{});
        result.micro_batches_done = a.micro_batch + 1;  // backwards run in micro-batch order
        break;
      case ActionKind::SendBackward:
        pending_sends_[2 * slot + 1] = pp_->isend(floats(dinput_[slot].data()), NC, prev, backward_tag(a.micro_batch));
        pp_->flush();
        break;
      case ActionKind::Agree:
        // A consistent cut: every transfer posted so far meets its partner before the peer's own
        // agreement point, so the pending sends below complete and nothing is left half done.
        result.stopped = agreements.at_point();
        break;
    }
    if (result.stopped) break;
  }
  agreements.finish_all();
  for (auto& h : pending_sends_) wait_send(h);
  return result;
}

template <class Stage>
PipelineRun PipelineExecutorT<Stage>::forward_only(const Element* params, int count,
                                                   const std::function<MicroBatch(int)>& batch,
                                                   const StopAgreement& stop, const ForwardHook& on_forward) {
  const size_t NC = transfer_floats<Element>(static_cast<size_t>(stage_.rows()) * stage_.hidden());  // floats sent
  const int prev = topo_.pp_rank - 1, next = topo_.pp_rank + 1;
  // run() completes every transfer before it returns, so the training tags can be reused here; a
  // fixed tag suffices (MPI keeps messages between two ranks in order).
  const int tag = forward_tag(0);
  auto& acts = *acts_[0];
  PipelineRun result;
  Agreements agreements(stop, topo_.pp - 1);
  for (int m = 0; m < count; ++m) {
    if (!topo_.is_first_stage()) pp_->irecv(floats(input_[0].data()), NC, prev, tag)->wait();
    result.loss += stage_.forward(acts, params, batch(m), topo_.is_first_stage() ? nullptr : input_[0].data());
    if (on_forward) on_forward(m, acts);
    // Blocking send: the next forward overwrites the output buffer. The chain of stages has no cycle.
    if (!topo_.is_last_stage()) pp_->isend(floats(stage_.output(acts)), NC, next, tag)->wait();
    result.micro_batches_done = m + 1;
    // Every stage has received and passed on micro-batch m here: a consistent cut.
    if (m + 1 < count && agreements.at_point()) {
      result.stopped = true;
      break;
    }
  }
  agreements.finish_all();
  return result;
}

template class PipelineExecutorT<LlamaStage>;
#if IRIS_WITH_CUDA
template class PipelineExecutorT<CudaLlamaStage>;
#endif

}  // namespace iris
