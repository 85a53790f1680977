// The tokenize pipeline keeps input order for any worker count and reports the first bad record in
// input order; compressed inputs (.gz, .zst) read back line for line like the plain file.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/tokenize/compressed_input.h"
#include "io/tokenize/tokenize_pipeline.h"

namespace {
using namespace iris::io;
namespace fs = std::filesystem;

class PipelineTest : public ::testing::Test {
 protected:
  fs::path dir_ = fs::temp_directory_path() / ("iris_pipeline_" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string lines(int n, int bad_at = -1) const {
    std::string s;
    for (int i = 1; i <= n; ++i) s += i == bad_at ? "{oops\n" : "{\"text\": \"" + std::to_string(i) + "\"}\n";
    return s;
  }
  void write(const std::string& name, const std::string& text) { std::ofstream(path(name), std::ios::binary) << text; }

  // Runs the pipeline; the transform sleeps a little for some records so workers finish out of order.
  std::vector<int32_t> run(const std::string& file, int workers, bool skip_bad, PipelineSummary* summary = nullptr) {
    RecordReader reader({{file, InputFormat::JsonLines}});
    std::vector<int32_t> order;
    PipelineOptions opt;
    opt.workers = workers;
    opt.batch_records = 7;
    opt.skip_bad_lines = skip_bad;
    opt.progress_seconds = 0;
    auto transform = [](const InputRecord& r, TokenizedRecord& out) {
      const int value = std::stoi(parse_text_record(r, "text"));
      if (value % 13 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      out.tokens = {value};
    };
    auto sink = [&](const InputRecord&, const TokenizedRecord& r) { order.push_back(r.tokens[0]); };
    const PipelineSummary s = run_tokenize_pipeline(reader, 0, transform, sink, opt);
    if (summary) *summary = s;
    return order;
  }
};

TEST_F(PipelineTest, OrderIsInputOrderForAnyWorkerCount) {
  write("a.jsonl", lines(500));
  std::vector<int32_t> expected(500);
  for (int i = 0; i < 500; ++i) expected[i] = i + 1;
  for (int workers : {1, 2, 5}) EXPECT_EQ(run(path("a.jsonl"), workers, false), expected) << workers << " workers";
}

TEST_F(PipelineTest, FirstBadRecordInInputOrderIsTheError) {
  std::string text = lines(300, 250);
  text.replace(text.find("{\"text\": \"40\"}"), 14, "{\"txt\": \"40\"}");  // an earlier bad line
  write("b.jsonl", text);
  for (int workers : {1, 4}) {
    try {
      run(path("b.jsonl"), workers, false);
      FAIL() << "expected an error";
    } catch (const BadRecordError& e) {
      EXPECT_NE(std::string(e.what()).find("b.jsonl:40"), std::string::npos) << e.what();
    }
  }
  PipelineSummary s;
  EXPECT_EQ(run(path("b.jsonl"), 3, true, &s).size(), 298u);
  EXPECT_EQ(s.bad_lines["malformed JSON"], 1u);
  EXPECT_EQ(s.bad_lines["no \"text\" field"], 1u);
  EXPECT_EQ(s.records, 300u);
}

TEST_F(PipelineTest, GzipAndZstdReadLikePlain) {
  std::string text = lines(2000) + "last line without newline\r";
  write("p.jsonl", text);
  gzFile gz = gzopen(path("p.jsonl.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  gzclose(gz);
  // Two zstd frames back to back, as concatenated .zst files are.
  std::string zst;
  for (const std::string& half : {text.substr(0, 777), text.substr(777)}) {
    std::string frame(ZSTD_compressBound(half.size()), '\0');
    frame.resize(ZSTD_compress(frame.data(), frame.size(), half.data(), half.size(), 3));
    zst += frame;
  }
  write("p.jsonl.zst", zst);
  auto read_lines = [](const std::string& p) {
    LineReader r(p);
    std::vector<std::string> out;
    std::string line;
    while (r.next(line)) out.push_back(line);
    return out;
  };
  const auto plain = read_lines(path("p.jsonl"));
  ASSERT_EQ(plain.size(), 2001u);
  EXPECT_EQ(plain.back(), "last line without newline\r");
  EXPECT_EQ(read_lines(path("p.jsonl.gz")), plain);
  EXPECT_EQ(read_lines(path("p.jsonl.zst")), plain);

  write("cut.jsonl.zst", zst.substr(0, zst.size() - 5));
  EXPECT_THROW(read_lines(path("cut.jsonl.zst")), iris::UserError);
}

}  // namespace
