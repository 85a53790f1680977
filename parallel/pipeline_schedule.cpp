// 1F1B schedule, its memory count and the rendezvous simulator that checks a set of per-stage lists
// for deadlock. See pipeline_schedule.h for the transfer order and why it cannot deadlock.
#include "parallel/pipeline_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "src/core/check.h"

namespace iris {

std::vector<PipelineAction> one_f_one_b_schedule(int pp, int stage, int micro_batches) {
  IRIS_USER_CHECK(pp >= 1, "parallel.pp ({}) must be at least 1", pp);
  IRIS_USER_CHECK(stage >= 0 && stage < pp, "pipeline stage {} outside 0 … {}", stage, pp - 1);
  IRIS_USER_CHECK(micro_batches >= 1, "the number of micro-batches per step ({}) must be at least 1", micro_batches);
  const bool first = stage == 0, last = stage == pp - 1;
  const int m = micro_batches;
  const int warmup = std::min(pp - stage - 1, m);
  const int steady = m - warmup;

  std::vector<PipelineAction> a;
  auto recv_forward = [&](int i) { if (!first) a.push_back({ActionKind::RecvForward, i}); };
  auto forward = [&](int i) {
    a.push_back({ActionKind::Forward, i});
    if (!last) a.push_back({ActionKind::SendForward, i});
  };
  auto recv_backward = [&](int i) { if (!last) a.push_back({ActionKind::RecvBackward, i}); };
  auto backward = [&](int i) { a.push_back({ActionKind::Backward, i}); };
  auto send_backward = [&](int i) { if (!first) a.push_back({ActionKind::SendBackward, i}); };

  // Warm-up: fill the pipeline up to this stage's depth.
  for (int i = 0; i < warmup; ++i) {
    recv_forward(i);
    forward(i);
  }
  // Steady state: forward warmup + j, then backward j. Each step's recvF is done by the previous step,
  // hoisted above its sendB (the order the next-earlier stage expects; see the header).
  if (steady > 0) recv_forward(warmup);
  for (int j = 0; j < steady; ++j) {
    forward(warmup + j);
    recv_backward(j);
    backward(j);
    if (j + 1 < steady) recv_forward(warmup + j + 1);
    send_backward(j);
  }
  // Cool-down: drain the backwards of the warm-up micro-batches.
  for (int j = steady; j < m; ++j) {
    recv_backward(j);
    backward(j);
    send_backward(j);
  }
  return a;
}

std::vector<PipelineAction> with_agreement_points(const std::vector<PipelineAction>& actions) {
  int last_backward = -1;
  bool sends_backward = false;  // every stage but the first sends B j after running it
  for (const PipelineAction& a : actions) {
    if (a.kind == ActionKind::Backward) last_backward = std::max(last_backward, a.micro_batch);
    if (a.kind == ActionKind::SendBackward) sends_backward = true;
  }
  std::vector<PipelineAction> out;
  for (const PipelineAction& a : actions) {
    out.push_back(a);
    // After B j itself on the first stage; elsewhere after sendB j (past the recvF hoisted above it).
    const ActionKind closes = sends_backward ? ActionKind::SendBackward : ActionKind::Backward;
    if (a.kind == closes && a.micro_batch != last_backward) out.push_back({ActionKind::Agree, a.micro_batch});
  }
  return out;
}

int max_in_flight(const std::vector<PipelineAction>& actions) {
  std::set<int> alive;
  size_t most = 0;
  for (const PipelineAction& a : actions) {
    if (a.kind == ActionKind::RecvForward || a.kind == ActionKind::Forward) alive.insert(a.micro_batch);
    if (a.kind == ActionKind::Backward) alive.erase(a.micro_batch);
    most = std::max(most, alive.size());
  }
  return static_cast<int>(most);
}

std::string to_string(const PipelineAction& action) {
  const char* name = "";
  switch (action.kind) {
    case ActionKind::RecvForward: name = "recvF"; break;
    case ActionKind::Forward: name = "F"; break;
    case ActionKind::SendForward: name = "sendF"; break;
    case ActionKind::RecvBackward: name = "recvB"; break;
    case ActionKind::Backward: name = "B"; break;
    case ActionKind::SendBackward: name = "sendB"; break;
    case ActionKind::Agree: name = "agree"; break;
  }
  return fmt::format("{}{}", name, action.micro_batch);
}

std::string to_string(const std::vector<PipelineAction>& actions) {
  std::string out;
  for (const PipelineAction& a : actions) {
    if (!out.empty()) out += ' ';
    out += to_string(a);
  }
  return out;
}

namespace {

// Transfers and agreements wait for other stages; compute does not.
bool blocks(ActionKind k) { return k != ActionKind::Forward && k != ActionKind::Backward; }

// The checks one stage's list must pass on its own; "" when it does.
std::string check_stage(int pp, int stage, int m, const std::vector<PipelineAction>& actions) {
  const bool first = stage == 0, last = stage == pp - 1;
  std::vector<char> received_forward(m), forwarded(m), received_backward(m), backwarded(m);
  for (size_t pos = 0; pos < actions.size(); ++pos) {
    const PipelineAction& a = actions[pos];
    const int i = a.micro_batch;
    auto fail = [&](const std::string& why) {
      return fmt::format("stage {}: action {} ({}) {}", stage, pos, to_string(a), why);
    };
    if (i < 0 || i >= m) return fail(fmt::format("has a micro-batch outside 0 … {}", m - 1));
    switch (a.kind) {
      case ActionKind::RecvForward:
        if (first) return fail("receives forward on the first stage");
        if (received_forward[i]) return fail("receives this micro-batch a second time");
        received_forward[i] = 1;
        break;
      case ActionKind::Forward:
        if (!first && !received_forward[i]) return fail("runs before its RecvForward");
        if (forwarded[i]) return fail("runs a second time");
        forwarded[i] = 1;
        break;
      case ActionKind::SendForward:
        if (last) return fail("sends forward from the last stage");
        if (!forwarded[i]) return fail("sends before its Forward");
        break;
      case ActionKind::RecvBackward:
        if (last) return fail("receives backward on the last stage");
        if (received_backward[i]) return fail("receives this micro-batch a second time");
        received_backward[i] = 1;
        break;
      case ActionKind::Backward:
        if (!forwarded[i]) return fail("runs before its Forward");
        if (!last && !received_backward[i]) return fail("runs before its RecvBackward");
        if (backwarded[i]) return fail("runs a second time");
        backwarded[i] = 1;
        break;
      case ActionKind::SendBackward:
        if (first) return fail("sends backward from the first stage");
        if (!backwarded[i]) return fail("sends before its Backward");
        break;
      case ActionKind::Agree:
        break;
    }
  }
  for (int i = 0; i < m; ++i) {
    if (!forwarded[i]) return fmt::format("stage {}: never runs F{}", stage, i);
    if (!backwarded[i]) return fmt::format("stage {}: never runs B{}", stage, i);
  }
  return "";
}

// The stage a transfer talks to.
int peer_of(int stage, ActionKind k) {
  return (k == ActionKind::SendForward || k == ActionKind::RecvBackward) ? stage + 1 : stage - 1;
}

}  // namespace

std::string simulate_schedules(int pp, int micro_batches, const std::vector<std::vector<PipelineAction>>& per_stage) {
  if (static_cast<int>(per_stage.size()) != pp)
    return fmt::format("expected {} stage lists, got {}", pp, per_stage.size());
  for (int s = 0; s < pp; ++s) {
    std::string error = check_stage(pp, s, micro_batches, per_stage[s]);
    if (!error.empty()) return error;
  }

  std::vector<size_t> pc(pp, 0);  // next action of each stage
  auto done = [&](int s) { return pc[s] == per_stage[s].size(); };
  auto current = [&](int s) { return per_stage[s][pc[s]]; };

  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < pp; ++s) {  // compute never blocks
      while (!done(s) && !blocks(current(s).kind)) {
        ++pc[s];
        progress = true;
      }
    }
    for (int s = 0; s + 1 < pp; ++s) {  // a transfer completes when both ends of a link reach it
      if (done(s) || done(s + 1)) continue;
      const PipelineAction a = current(s), b = current(s + 1);
      const bool forward = a.kind == ActionKind::SendForward && b.kind == ActionKind::RecvForward;
      const bool backward = a.kind == ActionKind::RecvBackward && b.kind == ActionKind::SendBackward;
      if (!forward && !backward) continue;
      if (a.micro_batch != b.micro_batch)
        return fmt::format("mismatch: stage {} {} meets stage {} {}", s, to_string(a), s + 1, to_string(b));
      ++pc[s];
      ++pc[s + 1];
      progress = true;
    }
    // An agreement completes when every stage is at one (a stage that has finished never arrives).
    bool all_agree = true;
    for (int s = 0; s < pp && all_agree; ++s) all_agree = !done(s) && current(s).kind == ActionKind::Agree;
    if (all_agree) {
      for (int s = 1; s < pp; ++s)
        if (current(s).micro_batch != current(0).micro_batch)
          return fmt::format("agreement mismatch: stage 0 at {} meets stage {} at {}", to_string(current(0)), s,
                             to_string(current(s)));
      for (int s = 0; s < pp; ++s) ++pc[s];
      progress = true;
    }
  }

  std::string report;
  for (int s = 0; s < pp; ++s) {
    if (done(s)) continue;
    const PipelineAction a = current(s);
    if (a.kind == ActionKind::Agree) {
      report += fmt::format("{}stage {} blocked on {} (waits for every stage)", report.empty() ? "deadlock: " : "; ", s,
                            to_string(a));
      continue;
    }
    const int peer = peer_of(s, a.kind);
    report += fmt::format("{}stage {} blocked on {} (stage {} {})", report.empty() ? "deadlock: " : "; ", s,
                          to_string(a), peer, done(peer) ? "has finished" : "is at " + to_string(current(peer)));
  }
  return report;
}

}  // namespace iris
