#include "src/train/stop_signals.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace iris {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_stop_signal == 0) g_stop_signal = signal;
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // system calls (file writes, MPI's polling) resume after the handler
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_signal_received() { return g_stop_signal; }

double slurm_job_end_time() {
  const char* end = std::getenv("SLURM_JOB_END_TIME");
  if (!end || !*end) return 0;
  try {
    return std::stod(end);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace iris
