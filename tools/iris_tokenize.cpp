// iris-tokenize: raw text / JSONL → Megatron indexed token dataset (PREFIX.bin + PREFIX.idx).
//   iris-tokenize --tokenizer M.model --input FILE|DIR [--input ...] --output PREFIX
//                 [--text-field text] [--append-eos true]
// Each document becomes one sequence: [BOS] tokens [EOS] (BOS when the tokenizer defines one).
// The output appears only when complete (written as .tmp, renamed at the end); on any error
// nothing new is left behind and an older PREFIX.bin/.idx stays as it was.
// Exit status: 0 done, 2 bad input, 1 internal failure.
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "io/indexed_dataset.h"
#include "io/text_input.h"
#include "io/tokenizer.h"
#include "src/core/check.h"
#include "src/core/error.h"
#include "src/core/log.h"

namespace {
namespace po = boost::program_options;
using namespace iris;

struct TokenizeOptions {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string text_field = "text";
  std::string output;
  bool append_eos = true;
};

struct TokenizeSummary {
  uint64_t documents = 0;      // written
  uint64_t empty_skipped = 0;  // documents with no text
  uint64_t tokens = 0;
  size_t files = 0;
  std::string dtype;           // token type in the .bin
};

// Returns false when --help was asked for (usage printed to `help`).
bool parse_options(int argc, char** argv, TokenizeOptions& opt, std::string& help) {
  po::options_description desc(
      "iris-tokenize: turn text files, directories and JSONL into a Megatron indexed token dataset\n"
      "Directories are searched recursively (sorted) for .txt/.md (one document per file) and .jsonl/.json\n"
      "(one document per line). Each document is written as [BOS] tokens [EOS].\n\nOptions");
  desc.add_options()
      ("help", "print this help")
      ("tokenizer", po::value(&opt.tokenizer)->required(), "sentencepiece model file (e.g. Llama 2 tokenizer.model)")
      ("input", po::value(&opt.inputs)->required()->composing()->multitoken(),
       "input file or directory; repeat or list several")
      ("text-field", po::value(&opt.text_field)->default_value(opt.text_field), "JSONL field holding the text")
      ("output", po::value(&opt.output)->required(), "output prefix: writes PREFIX.bin and PREFIX.idx")
      ("append-eos", po::value(&opt.append_eos)->default_value(opt.append_eos, "true"),
       "append EOS after every document (true/false)");
  std::ostringstream usage;
  usage << desc;
  help = usage.str();

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).style(
                  po::command_line_style::unix_style & ~po::command_line_style::allow_guessing).run(),
              vm);
    if (vm.count("help")) return false;
    po::notify(vm);
  } catch (const po::error& e) {
    IRIS_USER_CHECK(false, "{} (see iris-tokenize --help)", e.what());
  }
  return true;
}

void validate_output(const std::string& prefix) {
  namespace fs = std::filesystem;
  IRIS_USER_CHECK(!prefix.ends_with(".bin") && !prefix.ends_with(".idx"),
                  "--output {} is a prefix: give it without .bin/.idx (PREFIX.bin and PREFIX.idx are written)", prefix);
  IRIS_USER_CHECK(!fs::is_directory(prefix), "--output {} is a directory; give a prefix such as {}/corpus", prefix,
                  prefix);
  fs::path parent = fs::path(prefix).parent_path();
  IRIS_USER_CHECK(parent.empty() || fs::is_directory(parent), "output directory {} does not exist; create it first",
                  parent.string());
}

// One document's sequence: [BOS] text tokens [EOS].
void frame_document(const io::Tokenizer& tok, std::string_view text, bool append_eos, std::vector<int32_t>& out) {
  out.clear();
  if (tok.bos_id() >= 0) out.push_back(tok.bos_id());
  std::vector<int32_t> ids = tok.encode(text);
  out.insert(out.end(), ids.begin(), ids.end());
  if (append_eos) out.push_back(tok.eos_id());
}

// Documents flow read → tokenize → write in batches. Only the tokenize step is per-document work;
// it is the step a --workers N option would run in parallel while writing stays in input order.
TokenizeSummary tokenize_corpus(const TokenizeOptions& opt) {
  validate_output(opt.output);
  const io::Tokenizer tok = io::Tokenizer::load(opt.tokenizer);
  IRIS_USER_CHECK(!opt.append_eos || tok.eos_id() >= 0,
                  "tokenizer {} defines no EOS token; pass --append-eos false to write documents without one",
                  opt.tokenizer);
  io::DocumentReader reader(io::list_input_files(opt.inputs), opt.text_field);
  io::IndexedDatasetWriter writer(opt.output, tok.vocab_size());

  constexpr size_t kBatchDocuments = 256;
  std::vector<io::TextDocument> batch(kBatchDocuments);
  std::vector<std::vector<int32_t>> batch_tokens(kBatchDocuments);
  TokenizeSummary summary;
  auto last_report = std::chrono::steady_clock::now();
  for (;;) {
    size_t n = 0;
    while (n < kBatchDocuments && reader.next(batch[n])) {
      if (batch[n].text.empty()) {
        ++summary.empty_skipped;
        continue;
      }
      ++n;
    }
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) frame_document(tok, batch[i].text, opt.append_eos, batch_tokens[i]);
    for (size_t i = 0; i < n; ++i) writer.add_document(batch_tokens[i]);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::seconds(10)) {
      spdlog::info("{} documents, {} tokens so far (at {})", writer.num_documents(), writer.num_tokens(),
                   batch[n - 1].where());
      last_report = now;
    }
  }
  summary.files = reader.files_opened();
  IRIS_USER_CHECK(writer.num_documents() > 0, "the {} input file(s) contain no text; nothing to write",
                  summary.files);
  summary.documents = writer.num_documents();
  summary.tokens = writer.num_tokens();
  summary.dtype = writer.dtype() == io::IndexedDType::U16 ? "uint16" : "int32";
  writer.finalize();
  return summary;
}

}  // namespace

int main(int argc, char** argv) {
  iris::init_logging(0, 1);
  try {
    TokenizeOptions opt;
    std::string help;
    if (!parse_options(argc, argv, opt, help)) {
      std::cout << help << "\n";
      return 0;
    }
    const auto start = std::chrono::steady_clock::now();
    const TokenizeSummary s = tokenize_corpus(opt);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("iris-tokenize: %llu documents, %llu tokens from %zu files in %.1f s\n",
                static_cast<unsigned long long>(s.documents), static_cast<unsigned long long>(s.tokens), s.files,
                seconds);
    if (s.empty_skipped > 0) {
      std::printf("  skipped %llu empty documents\n", static_cast<unsigned long long>(s.empty_skipped));
    }
    std::printf("  wrote %s.bin (%s tokens) and %s.idx\n", opt.output.c_str(), s.dtype.c_str(), opt.output.c_str());
    return 0;
  } catch (const iris::UserError& e) {
    spdlog::error("iris-tokenize: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("iris-tokenize failed: {}", e.what());
    return 1;
  }
}
