// Run configuration: INI + --section.key flags, precedence, unknown keys named, values validated.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "parallel/device_comm.h"
#include "src/core/error.h"
#include "src/train/config.h"
#include "tests/unit/config_test_util.h"

namespace iris {
namespace {

std::string write_ini(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / "iris_config_test";
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

RunConfig parse(std::vector<std::string> args) { return test::parse_args(std::move(args)); }
std::string error_of(std::vector<std::string> args) { return test::parse_error(std::move(args)); }

TEST(RunConfig, IniValuesAndCommandLineOverrides) {
  auto ini = write_ini("a.ini", "[model]\nconfig = m.json\n[train]\nsteps = 7\nseq_len = 64\n[optim]\nlr = 0.5\n");
  RunConfig c = parse({"--config", ini, "--train.steps=9", "--parallel.tp", "2"});
  EXPECT_EQ(c.model.config, "m.json");
  EXPECT_EQ(c.train.steps, 9);     // command line wins over the file
  EXPECT_EQ(c.train.seq_len, 64);  // file wins over the default
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_EQ(c.train.micro_batch, 8);  // default
  const std::string text = c.to_ini();
  EXPECT_NE(text.find("[train]\nseq_len = 64\n"), std::string::npos) << text;
  EXPECT_NE(text.find("steps = 9"), std::string::npos) << text;
}

TEST(RunConfig, UnknownKeyInFileIsNamedWithTheFile) {
  auto ini = write_ini("b.ini", "[train]\nstepz = 7\n");
  const std::string msg = error_of({"--config", ini});
  EXPECT_NE(msg.find("stepz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[train]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("b.ini"), std::string::npos) << msg;
}

TEST(RunConfig, UnknownFlagIsNamed) {
  const std::string msg = error_of({"--train.nonsense=1"});
  EXPECT_NE(msg.find("train.nonsense"), std::string::npos) << msg;
}

TEST(RunConfig, MalformedValueAndMissingFile) {
  auto ini = write_ini("c.ini", "[train]\nsteps = many\n");
  std::string msg = error_of({"--config", ini});
  EXPECT_NE(msg.find("c.ini"), std::string::npos) << msg;
  EXPECT_NE(msg.find("steps"), std::string::npos) << msg;
  msg = error_of({"--config", "/nonexistent/run.ini"});
  EXPECT_NE(msg.find("/nonexistent/run.ini"), std::string::npos) << msg;
}

TEST(RunConfig, ValidateNamesTheKey) {
  RunConfig c = parse({"--model.config=m.json", "--data.path=d", "--train.micro_batch=0"});
  try {
    c.validate();
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.micro_batch"), std::string::npos) << e.what();
  }
}

// The task, data and evaluation keys: each bad combination is refused naming the key(s) to change.
TEST(RunConfig, TaskDataAndEvalKeysAreValidated) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--data.path=d", "--train.task=finetune"}, "train.task must be pretrain or sft, got \"finetune\""},
      {{"--data.path=d", "--train.recompute=attention"},
       "train.recompute must be none, selective or full, got \"attention\""},
      {{"--data.path=d", "--data.paths=1 d"}, "data.path and data.paths are both set"},
      {{}, "data.path (the PREFIX given to iris-tokenize --output) or data.paths"},
      {{"--data.path=d", "--eval.every=5"}, "eval.every=5 needs validation data: set data.val_fraction"},
      {{"--data.path=d", "--data.split=9,1", "--eval.batches=0"}, "eval.batches must be a positive number of batches or 'all', got \"0\""},
      {{"--data.path=d", "--data.split=9,1", "--eval.batches=al"}, "eval.batches must be a positive number of batches or 'all'"},
      {{"--data.path=d", "--data.val_fraction=1"}, "data.val_fraction must be in [0, 1)"},
      {{"--data.path=d", "--data.val_fraction=0.1", "--data.split=9,1"}, "data.split and data.val_fraction are both set"},
      {{"--data.path=d", "--checkpoint.keep_best=1"}, "checkpoint.keep_best=1 ranks checkpoints by val_loss: set eval.every"},
      {{"--data.path=d", "--data.val_fraction=0.1", "--eval.every=4", "--checkpoint.every=6", "--checkpoint.keep_best=1"},
       "checkpoint.every=6 must be a multiple of eval.every=4"},
      {{"--data.path=d", "--checkpoint.best_metric=loss"}, "checkpoint.best_metric must be val_loss"},
      {{"--data.path=d", "--model.hf_dir=h", "--model.init_checkpoint=c"}, "model.hf_dir and model.init_checkpoint"},
      {{"--data.path=d", "--model.init_checkpoint=latest"}, "model.init_checkpoint=latest: give a directory"},
  };
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> all = {"--model.config=m.json"};
    all.insert(all.end(), args.begin(), args.end());
    try {
      parse(all).validate();  // a value outside an enum-like key's set is refused already by parse
      ADD_FAILURE() << "no error, expected: " << expected;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
  RunConfig ok = parse({"--model.config=m.json", "--data.paths=0.5 a 0.5 b", "--train.task=sft", "--sft.packing=false",
                        "--data.split=98,2", "--eval.every=10"});
  EXPECT_NO_THROW(ok.validate());
  EXPECT_EQ(ok.train.task, Task::Sft);
  EXPECT_FALSE(ok.sft.packing);
  RunConfig all = parse({"--model.config=m.json", "--data.path=d", "--data.val_fraction=0.1", "--eval.every=4",
                         "--eval.batches=all", "--checkpoint.dir=c", "--checkpoint.every=8", "--checkpoint.keep_best=2"});
  EXPECT_NO_THROW(all.validate());
  EXPECT_EQ(all.eval.batches, 0);
  EXPECT_NE(all.to_ini().find("batches = all"), std::string::npos) << all.to_ini();
  EXPECT_EQ(parse({"--model.config=m.json", "--data.path=d", "--eval.batches=3"}).eval.batches, 3);
}

// parallel.comm: mpi (the default) everywhere; nccl only where this build has CUDA and NCCL, refused
// otherwise with the reason and the alternative; anything else is refused naming the key.
TEST(RunConfig, ParallelCommIsValidatedAgainstTheBuild) {
  const std::vector<std::string> base = {"--model.config=m.json", "--data.path=d"};
  auto with = [&](const std::string& flag) {
    std::vector<std::string> args = base;
    args.push_back(flag);
    return parse(args);
  };
  RunConfig defaults = parse(base);
  EXPECT_EQ(defaults.parallel.comm, CommKind::Mpi);
  EXPECT_NO_THROW(defaults.validate());
  EXPECT_NE(defaults.to_ini().find("comm = mpi\n"), std::string::npos) << defaults.to_ini();

  try {
    with("--parallel.comm=gloo").validate();
    ADD_FAILURE() << "parallel.comm=gloo was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.comm must be nccl or mpi, got \"gloo\""), std::string::npos)
        << e.what();
  }

  auto ini = write_ini("comm.ini", "[parallel]\ncomm = nccl\n");
  RunConfig nccl = parse({"--config", ini, "--model.config=m.json", "--data.path=d"});
  EXPECT_EQ(nccl.parallel.comm, CommKind::Nccl);
  const std::string unavailable = device_comm_unavailable_reason(CommKind::Nccl);
#if defined(IRIS_TEST_EXPECT_NCCL)
  EXPECT_EQ(unavailable, "") << "this build found NCCL, so parallel.comm=nccl must be available";
#endif
  if (unavailable.empty()) {
    EXPECT_NO_THROW(nccl.validate());
  } else {
    try {
      nccl.validate();
      ADD_FAILURE() << "parallel.comm=nccl was accepted by a build without NCCL";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("parallel.comm=nccl needs"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("parallel.comm=mpi"), std::string::npos) << e.what();
    }
  }
}

// parallel.overlap_grad_reduce: auto overlaps only with train.device=cuda and parallel.comm=nccl (MPI does
// not progress a non-blocking reduce during compute); true/false force it; anything else is refused.
TEST(RunConfig, OverlapGradReduceResolves) {
  auto config = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--model.config=m.json", "--data.path=d"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse(args);
  };
  EXPECT_EQ(config({}).parallel.overlap_grad_reduce, OverlapGradReduce::Auto);
  EXPECT_FALSE(config({}).overlaps_grad_reduce()) << "cpu";
  EXPECT_FALSE(config({"--train.device=cuda"}).overlaps_grad_reduce()) << "cuda with parallel.comm=mpi";
  EXPECT_TRUE(config({"--train.device=cuda", "--parallel.comm=nccl"}).overlaps_grad_reduce());
  EXPECT_FALSE(config({"--train.device=cuda", "--parallel.comm=nccl", "--parallel.overlap_grad_reduce=false"})
                   .overlaps_grad_reduce());
  EXPECT_TRUE(config({"--parallel.overlap_grad_reduce=true"}).overlaps_grad_reduce()) << "forced on the cpu";
  const RunConfig bf16 = config({"--train.device=cuda", "--parallel.comm=nccl", "--train.grad_dtype=bf16"});
  EXPECT_TRUE(bf16.overlap_grad_reduce_requested());
  EXPECT_FALSE(bf16.overlaps_grad_reduce()) << "bf16 gradients always use the reduce-scatter";
  EXPECT_NO_THROW(config({"--parallel.overlap_grad_reduce=true"}).validate());
  try {
    config({"--parallel.overlap_grad_reduce=yes"}).validate();
    ADD_FAILURE() << "parallel.overlap_grad_reduce=yes was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.overlap_grad_reduce must be auto, true or false, got \"yes\""),
              std::string::npos)
        << e.what();
  }
}

// train.device: cpu (the default) everywhere; cuda only in a CUDA build (refused otherwise with how to
// rebuild); anything else refused naming the key.
TEST(RunConfig, TrainDeviceIsValidatedAgainstTheBuild) {
  const std::vector<std::string> base = {"--model.config=m.json", "--data.path=d"};
  RunConfig defaults = parse(base);
  EXPECT_EQ(defaults.train.device, Device::Cpu);
  EXPECT_NE(defaults.to_ini().find("device = cpu\n"), std::string::npos) << defaults.to_ini();
  std::vector<std::string> args = base;
  args.push_back("--train.device=tpu");
  try {
    parse(args).validate();
    ADD_FAILURE() << "train.device=tpu was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.device must be cpu or cuda, got \"tpu\""), std::string::npos) << e.what();
  }
  args.back() = "--train.device=cuda";
  RunConfig cuda = parse(args);
  EXPECT_EQ(cuda.train.device, Device::Cuda);
#if IRIS_WITH_CUDA
  EXPECT_NO_THROW(cuda.validate());  // a missing device is the trainer's start-up error, not the config's
#else
  try {
    cuda.validate();
    ADD_FAILURE() << "train.device=cuda was accepted by a build without CUDA";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.device=cuda needs a CUDA build"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("-DIRIS_CUDA=ON"), std::string::npos) << e.what();
  }
#endif
}

// train.grad_dtype: fp32 (the default) | bf16; bf16 only with train.device=cuda; anything else refused naming
// the key.
TEST(RunConfig, GradDtypeIsValidated) {
  const std::vector<std::string> base = {"--model.config=m.json", "--data.path=d"};
  const RunConfig defaults = parse(base);
  EXPECT_EQ(defaults.train.grad_dtype, DType::F32);
  EXPECT_EQ(defaults.grad_dtype(), DType::F32);
  EXPECT_NE(defaults.to_ini().find("grad_dtype = fp32\n"), std::string::npos) << defaults.to_ini();
  EXPECT_NO_THROW(defaults.validate());

  const auto validate_error = [](const std::vector<std::string>& args) -> std::string {
    try {
      parse(args).validate();
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  std::vector<std::string> args = base;
  args.push_back("--train.grad_dtype=fp16");
  EXPECT_NE(validate_error(args).find("train.grad_dtype must be fp32 or bf16, got \"fp16\""), std::string::npos)
      << validate_error(args);
  args.back() = "--train.grad_dtype=BF16";  // the spelling is exact, like the other keys' values
  EXPECT_NE(validate_error(args).find("train.grad_dtype must be fp32 or bf16"), std::string::npos);

  args.back() = "--train.grad_dtype=bf16";
  const RunConfig cpu_bf16 = parse(args);
  EXPECT_EQ(cpu_bf16.grad_dtype(), DType::BF16);
  const std::string cpu_error = validate_error(args);
  EXPECT_NE(cpu_error.find("train.grad_dtype=bf16 needs train.device=cuda"), std::string::npos) << cpu_error;

  args.push_back("--train.device=cuda");
  const RunConfig cuda_bf16 = parse(args);
  EXPECT_NE(cuda_bf16.to_ini().find("grad_dtype = bf16\n"), std::string::npos) << cuda_bf16.to_ini();
#if IRIS_WITH_CUDA
  EXPECT_NO_THROW(cuda_bf16.validate());
#else
  EXPECT_NE(validate_error(args).find("train.device=cuda needs a CUDA build"), std::string::npos);
#endif
}

}  // namespace
}  // namespace iris
