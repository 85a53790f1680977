// A Comm that stands for a group without being one: it knows its rank and size, and every operation
// throws. Offline tools use it where code only asks a group for its geometry (iris-convert lays out a
// target rank's ZeRO-1 shard with it); tests derive from it to record the few operations they expect.
#pragma once
#include <string>

#include "parallel/comm.h"
#include "src/core/error.h"

namespace iris {

class OfflineComm : public Comm {
 public:
  OfflineComm(int rank, int size, std::string name) : rank_(rank), size_(size), name_(std::move(name)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  void all_reduce(float*, size_t, ReduceOp) override { fail("all_reduce"); }
  void all_reduce(double*, size_t, ReduceOp) override { fail("all_reduce"); }
  void reduce_scatter(const float*, float*, size_t) override { fail("reduce_scatter"); }
  void all_gather(const float*, float*, size_t) override { fail("all_gather"); }
  void broadcast(float*, size_t, int) override { fail("broadcast"); }
  void broadcast_bytes(void*, size_t, int) override { fail("broadcast"); }
  void barrier() override { fail("barrier"); }
  std::unique_ptr<CommHandle> isend(const float*, size_t, int, int) override { fail("send"); }
  std::unique_ptr<CommHandle> irecv(float*, size_t, int, int) override { fail("recv"); }
  std::unique_ptr<CommHandle> iall_reduce(float*, size_t, ReduceOp) override { fail("all_reduce"); }
  std::unique_ptr<CommHandle> ireduce_scatter(const float*, float*, size_t) override { fail("reduce_scatter"); }
  std::unique_ptr<CommHandle> iall_gather(const float*, float*, size_t) override { fail("all_gather"); }
  std::unique_ptr<CommHandle> ibroadcast(float*, size_t, int) override { fail("broadcast"); }
  std::unique_ptr<CommHandle> ireduce(float*, size_t, int) override { fail("reduce"); }

 private:
  [[noreturn]] void fail(const char* op) const {
    throw Error("group " + name_ + ": " + op + " called on an offline communicator, which cannot communicate");
  }
  int rank_, size_;
  std::string name_;
};

}  // namespace iris
