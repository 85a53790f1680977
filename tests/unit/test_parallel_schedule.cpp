// Pipeline schedule: the 1F1B lists (hand-written cases and properties over pp × micro-batches),
// their memory bound, and a simulator that must both pass them and catch broken lists.
#include <gtest/gtest.h>

#include <algorithm>

#include "parallel/pipeline_schedule.h"
#include "src/core/error.h"

namespace iris {

// Lets GoogleTest print actions in failure messages.
void PrintTo(const PipelineAction& a, std::ostream* os) { *os << to_string(a); }

namespace {

using Actions = std::vector<PipelineAction>;

std::vector<Actions> all_stages(int pp, int m) {
  std::vector<Actions> lists;
  for (int s = 0; s < pp; ++s) lists.push_back(one_f_one_b_schedule(pp, s, m));
  return lists;
}

std::vector<int> micro_batches_of(const Actions& actions, ActionKind kind) {
  std::vector<int> out;
  for (const PipelineAction& a : actions)
    if (a.kind == kind) out.push_back(a.micro_batch);
  return out;
}

size_t position(const Actions& actions, PipelineAction wanted) {
  return std::find(actions.begin(), actions.end(), wanted) - actions.begin();
}

// Textbook 1F1B where each steady step is recvF, F, sendF, recvB, B, sendB: every stage sends before
// it receives on the link it shares with its successor, so it deadlocks under rendezvous sends.
Actions naive_one_f_one_b(int pp, int s, int m) {
  const bool first = s == 0, last = s == pp - 1;
  const int warmup = std::min(pp - s - 1, m);
  Actions a;
  auto fwd = [&](int i) {
    if (!first) a.push_back({ActionKind::RecvForward, i});
    a.push_back({ActionKind::Forward, i});
    if (!last) a.push_back({ActionKind::SendForward, i});
  };
  auto bwd = [&](int i) {
    if (!last) a.push_back({ActionKind::RecvBackward, i});
    a.push_back({ActionKind::Backward, i});
    if (!first) a.push_back({ActionKind::SendBackward, i});
  };
  for (int i = 0; i < warmup; ++i) fwd(i);
  for (int j = 0; j < m - warmup; ++j) {
    fwd(warmup + j);
    bwd(j);
  }
  for (int j = m - warmup; j < m; ++j) bwd(j);
  return a;
}

TEST(PipelineSchedule, ToString) {
  EXPECT_EQ(to_string(PipelineAction{ActionKind::Forward, 3}), "F3");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::Backward, 0}), "B0");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::RecvForward, 2}), "recvF2");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::SendForward, 4}), "sendF4");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::RecvBackward, 5}), "recvB5");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::SendBackward, 1}), "sendB1");
  EXPECT_EQ(to_string(PipelineAction{ActionKind::Agree, 0}), "agree0");
}

TEST(PipelineSchedule, SingleStageIsForwardThenBackwardPerMicroBatch) {
  EXPECT_EQ(to_string(one_f_one_b_schedule(1, 0, 3)), "F0 B0 F1 B1 F2 B2");
  EXPECT_EQ(to_string(one_f_one_b_schedule(1, 0, 1)), "F0 B0");
}

TEST(PipelineSchedule, TwoStagesThreeMicroBatches) {
  using K = ActionKind;
  const Actions stage0 = {{K::Forward, 0}, {K::SendForward, 0},                                        // warm-up
                          {K::Forward, 1}, {K::SendForward, 1}, {K::RecvBackward, 0}, {K::Backward, 0},  // steady
                          {K::Forward, 2}, {K::SendForward, 2}, {K::RecvBackward, 1}, {K::Backward, 1},
                          {K::RecvBackward, 2}, {K::Backward, 2}};                                     // cool-down
  const Actions stage1 = {{K::RecvForward, 0},
                          {K::Forward, 0}, {K::Backward, 0}, {K::RecvForward, 1}, {K::SendBackward, 0},
                          {K::Forward, 1}, {K::Backward, 1}, {K::RecvForward, 2}, {K::SendBackward, 1},
                          {K::Forward, 2}, {K::Backward, 2}, {K::SendBackward, 2}};
  EXPECT_EQ(one_f_one_b_schedule(2, 0, 3), stage0);
  EXPECT_EQ(one_f_one_b_schedule(2, 1, 3), stage1);
  EXPECT_EQ(simulate_schedules(2, 3, {stage0, stage1}), "");
}

TEST(PipelineSchedule, FourStagesTwoMicroBatches) {
  // Fewer micro-batches than stages: stages 0 and 1 only warm up and cool down.
  EXPECT_EQ(to_string(one_f_one_b_schedule(4, 0, 2)), "F0 sendF0 F1 sendF1 recvB0 B0 recvB1 B1");
  EXPECT_EQ(to_string(one_f_one_b_schedule(4, 1, 2)),
            "recvF0 F0 sendF0 recvF1 F1 sendF1 recvB0 B0 sendB0 recvB1 B1 sendB1");
  EXPECT_EQ(to_string(one_f_one_b_schedule(4, 2, 2)),
            "recvF0 F0 sendF0 recvF1 F1 sendF1 recvB0 B0 sendB0 recvB1 B1 sendB1");
  EXPECT_EQ(to_string(one_f_one_b_schedule(4, 3, 2)), "recvF0 F0 B0 recvF1 sendB0 F1 B1 sendB1");
  EXPECT_EQ(simulate_schedules(4, 2, all_stages(4, 2)), "");
}

TEST(PipelineSchedule, EveryLayoutSimulatesWithoutDeadlock) {
  for (int pp = 1; pp <= 8; ++pp)
    for (int m = 1; m <= 16; ++m) EXPECT_EQ(simulate_schedules(pp, m, all_stages(pp, m)), "") << "pp=" << pp << " m=" << m;
}

TEST(PipelineSchedule, EachMicroBatchOnceInOrderAndTransfersWhereExpected) {
  using K = ActionKind;
  for (int pp = 1; pp <= 8; ++pp) {
    for (int m = 1; m <= 16; ++m) {
      for (int s = 0; s < pp; ++s) {
        SCOPED_TRACE("pp=" + std::to_string(pp) + " m=" + std::to_string(m) + " stage=" + std::to_string(s));
        const Actions a = one_f_one_b_schedule(pp, s, m);
        const bool first = s == 0, last = s == pp - 1;
        std::vector<int> all(m);
        for (int i = 0; i < m; ++i) all[i] = i;
        const std::vector<int> none;
        EXPECT_EQ(micro_batches_of(a, K::Forward), all);
        EXPECT_EQ(micro_batches_of(a, K::Backward), all);
        EXPECT_EQ(micro_batches_of(a, K::RecvForward), first ? none : all);
        EXPECT_EQ(micro_batches_of(a, K::SendForward), last ? none : all);
        EXPECT_EQ(micro_batches_of(a, K::RecvBackward), last ? none : all);
        EXPECT_EQ(micro_batches_of(a, K::SendBackward), first ? none : all);
        for (int i = 0; i < m; ++i) {
          const size_t f = position(a, {K::Forward, i}), b = position(a, {K::Backward, i});
          EXPECT_LT(f, b) << "F" << i << " after B" << i;
          if (!first) EXPECT_LT(position(a, {K::RecvForward, i}), f);
          if (!last) EXPECT_EQ(position(a, {K::SendForward, i}), f + 1);
          if (!last) EXPECT_LT(position(a, {K::RecvBackward, i}), b);
          if (!first) EXPECT_GT(position(a, {K::SendBackward, i}), b);
        }
        // Warm-up: min(pp − s − 1, m) forwards run before the first backward, plus the first steady one.
        const size_t first_backward = position(a, {K::Backward, 0});
        const auto forwards_before = std::count_if(a.begin(), a.begin() + first_backward,
                                                   [](const PipelineAction& x) { return x.kind == K::Forward; });
        const int warmup = std::min(pp - s - 1, m);
        EXPECT_EQ(forwards_before, warmup < m ? warmup + 1 : m);
      }
    }
  }
}

TEST(PipelineSchedule, InFlightActivationsAreBoundedByStagesAhead) {
  for (int pp = 1; pp <= 8; ++pp)
    for (int m = 1; m <= 16; ++m)
      for (int s = 0; s < pp; ++s)
        EXPECT_EQ(max_in_flight(one_f_one_b_schedule(pp, s, m)), std::min(pp - s, m))
            << "pp=" << pp << " m=" << m << " stage=" << s;
}

TEST(PipelineSchedule, ActivationSetMicroBatchModSetsIsFreeWhenReused) {
  // The executor keeps max_in_flight sets and gives micro-batch i the set i mod sets; a set must be
  // free (its previous micro-batch's Backward done) when the next micro-batch first touches it.
  for (int pp = 1; pp <= 8; ++pp) {
    for (int m = 1; m <= 16; ++m) {
      for (int s = 0; s < pp; ++s) {
        const Actions a = one_f_one_b_schedule(pp, s, m);
        const int sets = max_in_flight(a);
        std::vector<int> owner(sets, -1);
        for (const PipelineAction& x : a) {
          int& o = owner[x.micro_batch % sets];
          if (x.kind == ActionKind::RecvForward || x.kind == ActionKind::Forward) {
            EXPECT_TRUE(o == -1 || o == x.micro_batch)
                << "pp=" << pp << " m=" << m << " stage=" << s << ": " << to_string(x) << " while set holds " << o;
            o = x.micro_batch;
          }
          if (x.kind == ActionKind::Backward) o = -1;
        }
      }
    }
  }
}

TEST(PipelineSchedule, MaxInFlightCountsFromReceiveToBackward) {
  using K = ActionKind;
  EXPECT_EQ(max_in_flight({}), 0);
  EXPECT_EQ(max_in_flight({{K::Forward, 0}, {K::Forward, 1}, {K::Forward, 2}, {K::Backward, 0}, {K::Backward, 1},
                           {K::Backward, 2}}), 3);
  // A received input is held for backward, so it counts before its Forward runs.
  EXPECT_EQ(max_in_flight({{K::RecvForward, 0}, {K::RecvForward, 1}, {K::Forward, 0}, {K::Backward, 0},
                           {K::Forward, 1}, {K::Backward, 1}}), 2);
}

TEST(PipelineSchedule, SimulatorCatchesSendSendDeadlock) {
  // Stage 1 sends B0 before receiving F1 while stage 0 sends F1 before receiving B0.
  std::vector<Actions> lists = all_stages(2, 3);
  ASSERT_EQ(to_string(lists[1][3]), "recvF1");
  ASSERT_EQ(to_string(lists[1][4]), "sendB0");
  std::swap(lists[1][3], lists[1][4]);
  const std::string report = simulate_schedules(2, 3, lists);
  EXPECT_NE(report.find("deadlock"), std::string::npos) << report;
  EXPECT_NE(report.find("stage 0 blocked on sendF1"), std::string::npos) << report;
  EXPECT_NE(report.find("stage 1 blocked on sendB0"), std::string::npos) << report;
}

TEST(PipelineSchedule, SimulatorCatchesRecvRecvDeadlock) {
  std::vector<Actions> lists = all_stages(2, 1);
  ASSERT_EQ(to_string(lists[0]), "F0 sendF0 recvB0 B0");
  std::swap(lists[0][1], lists[0][2]);  // stage 0 waits for B0 before it has sent F0
  const std::string report = simulate_schedules(2, 1, lists);
  EXPECT_NE(report.find("stage 0 blocked on recvB0 (stage 1 is at recvF0)"), std::string::npos) << report;
  EXPECT_NE(report.find("stage 1 blocked on recvF0"), std::string::npos) << report;
}

TEST(PipelineSchedule, SimulatorCatchesDroppedSend) {
  std::vector<Actions> lists = all_stages(2, 3);
  lists[0].erase(lists[0].begin() + position(lists[0], {ActionKind::SendForward, 1}));
  std::string report = simulate_schedules(2, 3, lists);
  EXPECT_NE(report.find("stage 1 blocked on recvF1"), std::string::npos) << report;

  lists = all_stages(3, 2);
  lists[2].pop_back();  // the last sendB1 from stage 2
  report = simulate_schedules(3, 2, lists);
  EXPECT_EQ(report, "deadlock: stage 0 blocked on recvB1 (stage 1 is at recvB1); "
                    "stage 1 blocked on recvB1 (stage 2 has finished)");
}

TEST(PipelineSchedule, SimulatorCatchesMicroBatchMismatch) {
  using K = ActionKind;
  std::vector<Actions> lists = all_stages(2, 2);
  ASSERT_EQ(to_string(lists[0]), "F0 sendF0 F1 sendF1 recvB0 B0 recvB1 B1");
  lists[0] = {{K::Forward, 0}, {K::Forward, 1}, {K::SendForward, 1}, {K::SendForward, 0},
              {K::RecvBackward, 0}, {K::Backward, 0}, {K::RecvBackward, 1}, {K::Backward, 1}};
  EXPECT_EQ(simulate_schedules(2, 2, lists), "mismatch: stage 0 sendF1 meets stage 1 recvF0");
}

TEST(PipelineSchedule, SendBeforeReceiveOrderDeadlocksInDeepPipelines) {
  // Why the steady state hoists recvF above sendB: without it every pp ≥ 2 with m ≥ pp deadlocks.
  for (int pp = 2; pp <= 8; ++pp) {
    for (int m = pp; m <= 16; ++m) {
      std::vector<Actions> lists;
      for (int s = 0; s < pp; ++s) lists.push_back(naive_one_f_one_b(pp, s, m));
      EXPECT_NE(simulate_schedules(pp, m, lists).find("deadlock"), std::string::npos) << "pp=" << pp << " m=" << m;
    }
  }
  // One bad stage in the middle of a good pipeline is named.
  std::vector<Actions> lists = all_stages(4, 8);
  lists[2] = naive_one_f_one_b(4, 2, 8);
  const std::string report = simulate_schedules(4, 8, lists);
  EXPECT_NE(report.find("stage 2 blocked on sendB0"), std::string::npos) << report;
}

TEST(PipelineSchedule, SimulatorRejectsMalformedLists) {
  using K = ActionKind;
  EXPECT_EQ(simulate_schedules(2, 1, {one_f_one_b_schedule(2, 0, 1)}), "expected 2 stage lists, got 1");

  std::vector<Actions> lists = all_stages(2, 2);
  lists[1].erase(lists[1].begin());  // drop recvF0: F0 runs without its input
  EXPECT_EQ(simulate_schedules(2, 2, lists), "stage 1: action 0 (F0) runs before its RecvForward");

  lists = all_stages(2, 2);
  lists[0].insert(lists[0].begin(), {K::RecvForward, 0});
  EXPECT_EQ(simulate_schedules(2, 2, lists), "stage 0: action 0 (recvF0) receives forward on the first stage");

  lists = all_stages(2, 2);
  lists[1].push_back({K::SendForward, 1});
  EXPECT_EQ(simulate_schedules(2, 2, lists), "stage 1: action 8 (sendF1) sends forward from the last stage");

  lists = all_stages(2, 2);
  lists[0].erase(lists[0].end() - 1);  // B1 missing
  EXPECT_EQ(simulate_schedules(2, 2, lists), "stage 0: never runs B1");

  lists = all_stages(1, 2);
  lists[0][0].micro_batch = 5;
  EXPECT_EQ(simulate_schedules(1, 2, lists), "stage 0: action 0 (F5) has a micro-batch outside 0 … 1");

  lists = all_stages(1, 2);
  std::swap(lists[0][0], lists[0][1]);  // B0 before F0
  EXPECT_EQ(simulate_schedules(1, 2, lists), "stage 0: action 0 (B0) runs before its Forward");
}

TEST(PipelineSchedule, RejectsBadArguments) {
  EXPECT_THROW(one_f_one_b_schedule(0, 0, 4), UserError);
  EXPECT_THROW(one_f_one_b_schedule(2, 2, 4), UserError);
  EXPECT_THROW(one_f_one_b_schedule(2, -1, 4), UserError);
  EXPECT_THROW(one_f_one_b_schedule(2, 0, 0), UserError);
}

// Agreement points (the trainer's mid-step stop agreement, a collective of every rank) sit after each
// backward but the last, past the transfers that follow it.
TEST(PipelineSchedule, AgreementPointsFollowEachBackwardButTheLast) {
  EXPECT_EQ(to_string(with_agreement_points(one_f_one_b_schedule(1, 0, 3))), "F0 B0 agree0 F1 B1 agree1 F2 B2");
  EXPECT_EQ(to_string(with_agreement_points(one_f_one_b_schedule(1, 0, 1))), "F0 B0");
  EXPECT_EQ(to_string(with_agreement_points(one_f_one_b_schedule(2, 0, 3))),
            "F0 sendF0 F1 sendF1 recvB0 B0 agree0 F2 sendF2 recvB1 B1 agree1 recvB2 B2");
  EXPECT_EQ(to_string(with_agreement_points(one_f_one_b_schedule(2, 1, 3))),
            "recvF0 F0 B0 recvF1 sendB0 agree0 F1 B1 recvF2 sendB1 agree1 F2 B2 sendB2");
}

TEST(PipelineSchedule, AgreementPointsAreAConsistentCutOfEveryLayout) {
  // Under rendezvous sends every stage reaches agree j together, for every pp and micro-batch count.
  for (int pp = 1; pp <= 8; ++pp) {
    for (int m = 1; m <= 16; ++m) {
      std::vector<Actions> lists;
      for (int s = 0; s < pp; ++s) {
        lists.push_back(with_agreement_points(one_f_one_b_schedule(pp, s, m)));
        EXPECT_EQ(micro_batches_of(lists.back(), ActionKind::Agree).size(), static_cast<size_t>(m - 1));
      }
      EXPECT_EQ(simulate_schedules(pp, m, lists), "") << "pp=" << pp << " m=" << m;
    }
  }
}

TEST(PipelineSchedule, SimulatorCatchesAgreementAtAnInconsistentPoint) {
  using K = ActionKind;
  // Stage 1 agrees right after B0, before it has received F1 and sent B0, while stage 0 must still
  // send F1 (and receive B0) before its own agree0: a collective there would hang.
  std::vector<Actions> lists = {with_agreement_points(one_f_one_b_schedule(2, 0, 3)), one_f_one_b_schedule(2, 1, 3)};
  lists[1].insert(lists[1].begin() + position(lists[1], {K::Backward, 0}) + 1, {K::Agree, 0});
  lists[1].insert(lists[1].begin() + position(lists[1], {K::Backward, 1}) + 1, {K::Agree, 1});
  std::string report = simulate_schedules(2, 3, lists);
  EXPECT_EQ(report, "deadlock: stage 0 blocked on sendF1 (stage 1 is at agree0); stage 1 blocked on agree0 (waits for "
                    "every stage)");
  // Different micro-batches at the same collective are a mismatch.
  std::vector<Actions> two = all_stages(2, 3);
  for (auto& l : two) l = with_agreement_points(l);
  two[1][position(two[1], {K::Agree, 0})].micro_batch = 1;
  report = simulate_schedules(2, 3, two);
  EXPECT_EQ(report, "agreement mismatch: stage 0 at agree0 meets stage 1 at agree1");
  // A stage without agreements leaves the others waiting.
  two = all_stages(2, 3);
  two[0] = with_agreement_points(two[0]);
  report = simulate_schedules(2, 3, two);
  EXPECT_NE(report.find("stage 0 blocked on agree0 (waits for every stage)"), std::string::npos) << report;
}

}  // namespace
}  // namespace iris
