// iris-tokenize: raw text / JSONL → Megatron indexed token dataset (PREFIX.bin + PREFIX.idx), and
// SFT JSONL/JSON/CSV → tokens + loss mask (PREFIX.bin/.idx + PREFIX_loss_mask.bin/.idx, see io/sft_dataset.h).
//   iris-tokenize --tokenizer M.model --input FILE|DIR [...] --output PREFIX [--workers N]
//   iris-tokenize --sft --template alpaca|medalpaca|llama2-chat|llama3-chat|mistral-instruct|PATH ... [--inspect N]
// Pretraining documents become [BOS] tokens [EOS]. Inputs may be .gz/.zst compressed. The output
// appears only when complete (.tmp files renamed at the end); on any error nothing new is left
// behind and an older output stays as it was. Exit status: 0 done, 2 bad input, 1 internal failure.
#include <boost/program_options.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "io/indexed_dataset.h"
#include "io/sft_dataset.h"
#include "io/sft_format.h"
#include "io/tokenize/text_input.h"
#include "io/tokenize/tokenize_pipeline.h"
#include "io/tokenizer.h"
#include "src/core/check.h"
#include "src/core/error.h"
#include "src/core/log.h"
#include "src/core/tool_main.h"

namespace {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;

struct TokenizeOptions {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string text_field = "text";
  std::string output;
  bool append_eos = true;
  int workers = 1;
  bool skip_bad_lines = false;
  bool allow_special = false;
  bool replace_invalid = false;
  double progress_seconds = 5;
  // SFT
  bool sft = false;
  std::string template_name, templates_dir, today_date;
  bool train_on_inputs = false;
  size_t seq_len = 0;
  std::string overflow = "truncate";
  int inspect = 0;
  io::SftFields fields;
};

// Returns false when --help was asked for (usage printed to `help`).
bool parse_options(int argc, char** argv, TokenizeOptions& opt, std::string& help) {
  po::options_description desc(
      "iris-tokenize: turn text files, directories, JSONL, JSON arrays and CSV (.gz/.zst too) into a Megatron\n"
      "indexed token dataset. Directories are searched recursively (sorted) for .txt/.md (one document per\n"
      "file) and .jsonl/.json (one document per line, or per element of a JSON array); a .csv named directly\n"
      "has a header row and one record per row. Fields: --text-field / --sft.*-field, dotted paths reach into\n"
      "nested objects. Each document is written as [BOS] tokens [EOS].\n\nOptions");
  desc.add_options()
      ("help", "print this help")
      ("tokenizer", po::value(&opt.tokenizer)->required(),
       "tokenizer file, by content: sentencepiece .model (Llama 2), tiktoken tokenizer.model (Llama 3's original/), "
       "or Hugging Face tokenizer.json (byte-level BPE)")
      ("input", po::value(&opt.inputs)->required()->composing()->multitoken(),
       "input file or directory; repeat or list several")
      ("text-field", po::value(&opt.text_field)->default_value(opt.text_field), "JSONL field holding the text")
      ("output", po::value(&opt.output), "output prefix: writes PREFIX.bin and PREFIX.idx (required unless --inspect)")
      ("append-eos", po::value(&opt.append_eos)->default_value(opt.append_eos, "true"),
       "append EOS after every document (true/false; pretraining only)")
      ("workers", po::value(&opt.workers)->default_value(opt.workers), "tokenizer threads (output is the same for any N)")
      ("skip-bad-lines", po::bool_switch(&opt.skip_bad_lines), "skip and count malformed records instead of failing")
      ("allow-special", po::bool_switch(&opt.allow_special),
       "read special-token text such as <|eot_id|> in the input as that token (byte-level BPE only; default: "
       "it is ordinary text)")
      ("replace-invalid", po::bool_switch(&opt.replace_invalid),
       "read bytes that are not valid UTF-8 as U+FFFD instead of failing on them")
      ("progress-seconds", po::value(&opt.progress_seconds)->default_value(opt.progress_seconds),
       "seconds between progress lines on stderr (0: none)");
  po::options_description sft("SFT (instruction/chat data → tokens + loss mask)");
  sft.add_options()
      ("sft", po::bool_switch(&opt.sft), "format SFT records with a template; also writes PREFIX_loss_mask.bin/.idx")
      ("template", po::value(&opt.template_name), "template name in the templates directory or a .json path")
      ("templates-dir", po::value(&opt.templates_dir), "where template names are looked up (default: configs/templates)")
      ("sft.today-date", po::value(&opt.today_date),
       "the template's {today_date} (llama3-chat's \"Today Date\", default 26 Jul 2024)")
      ("train-on-inputs", po::bool_switch(&opt.train_on_inputs), "train on prompts too, not only answers")
      ("seq-len", po::value(&opt.seq_len)->default_value(0), "longest sample in tokens (0: no limit)")
      ("sft.overflow", po::value(&opt.overflow)->default_value(opt.overflow), "longer samples: truncate or drop")
      ("inspect", po::value(&opt.inspect)->default_value(0),
       "print N formatted samples (untrained text in ⟦ ⟧) and exit without writing")
      ("sft.instruction-field", po::value(&opt.fields.instruction)->default_value(opt.fields.instruction), "")
      ("sft.input-field", po::value(&opt.fields.input)->default_value(opt.fields.input), "")
      ("sft.output-field", po::value(&opt.fields.output)->default_value(opt.fields.output), "")
      ("sft.messages-field", po::value(&opt.fields.messages)->default_value(opt.fields.messages), "")
      ("sft.role-field", po::value(&opt.fields.role)->default_value(opt.fields.role), "")
      ("sft.content-field", po::value(&opt.fields.content)->default_value(opt.fields.content), "");
  desc.add(sft);
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
  IRIS_USER_CHECK(opt.inspect >= 0, "--inspect must not be negative");
  IRIS_USER_CHECK(opt.inspect == 0 || opt.sft, "--inspect needs --sft");
  IRIS_USER_CHECK(opt.inspect > 0 || !opt.output.empty(), "--output PREFIX is required");
  IRIS_USER_CHECK(!opt.sft || !opt.template_name.empty(), "--sft needs --template (e.g. alpaca, medalpaca, "
                  "llama2-chat, or a .json path)");
  IRIS_USER_CHECK(opt.sft || opt.template_name.empty(), "--template is only used with --sft");
  IRIS_USER_CHECK(opt.overflow == "truncate" || opt.overflow == "drop", "--sft.overflow is {}; use truncate or drop",
                  opt.overflow);
  return true;
}

void validate_output(const std::string& prefix) {
  IRIS_USER_CHECK(!prefix.ends_with(".bin") && !prefix.ends_with(".idx"),
                  "--output {} is a prefix: give it without .bin/.idx (PREFIX.bin and PREFIX.idx are written)", prefix);
  IRIS_USER_CHECK(!fs::is_directory(prefix), "--output {} is a directory; give a prefix such as {}/corpus", prefix,
                  prefix);
  fs::path parent = fs::path(prefix).parent_path();
  IRIS_USER_CHECK(parent.empty() || fs::is_directory(parent), "output directory {} does not exist; create it first",
                  parent.string());
}

// configs/templates in the working directory, else next to the source tree the binary was built in.
std::string default_templates_dir(const char* argv0) {
  if (fs::is_directory("configs/templates")) return "configs/templates";
  std::error_code ec;
  const fs::path exe = fs::canonical("/proc/self/exe", ec);
  const fs::path base = ec ? fs::path(argv0).parent_path() : exe.parent_path();
  for (const fs::path& p : {base / "../../configs/templates", base / "../configs/templates"})
    if (fs::is_directory(p, ec)) return p.lexically_normal().string();
  return "configs/templates";
}

void print_summary(const TokenizeOptions& opt, const io::PipelineSummary& s, uint64_t trained, const char* dtype) {
  std::printf("iris-tokenize: %llu %s, %llu tokens from %zu files in %.1f s (%.0f tokens/s, %d workers)\n",
              static_cast<unsigned long long>(s.kept), opt.sft ? "samples" : "documents",
              static_cast<unsigned long long>(s.tokens), s.files, s.seconds, s.tokens / std::max(s.seconds, 1e-9),
              opt.workers);
  if (opt.sft) std::printf("  trained tokens (loss mask 1): %llu\n", static_cast<unsigned long long>(trained));
  for (const auto& [note, n] : s.notes)
    std::printf("  %llu %s\n", static_cast<unsigned long long>(n), note.c_str());
  for (const auto& [reason, n] : s.skipped)
    std::printf("  skipped %llu %s\n", static_cast<unsigned long long>(n), reason.c_str());
  for (const auto& [reason, n] : s.bad_lines)
    std::printf("  skipped %llu bad lines: %s\n", static_cast<unsigned long long>(n), reason.c_str());
  if (!s.first_bad_line.empty()) std::printf("  first bad line: %s\n", s.first_bad_line.c_str());
  std::printf("  wrote %s.bin (%s tokens) and %s.idx", opt.output.c_str(), dtype, opt.output.c_str());
  if (opt.sft) std::printf(", loss mask %s_loss_mask.bin/.idx", opt.output.c_str());
  std::printf("\n");
}

int inspect_samples(const TokenizeOptions& opt, const io::Tokenizer& tok, const io::SftFormatter& formatter) {
  io::RecordReader reader(io::list_input_files(opt.inputs));
  io::InputRecord record;
  io::FormattedSample sample;
  const bool color = ::isatty(STDOUT_FILENO);
  std::printf("template %s; untrained text is inside ⟦ ⟧%s\n", formatter.templ().source().c_str(),
              color ? " (and dimmed)" : "");
  for (int shown = 0; shown < opt.inspect && reader.next(record); ++shown) {
    io::InputRecord scratch;
    const io::InputRecord& valid = io::valid_utf8_record(record, opt.replace_invalid, scratch);
    formatter.format(io::parse_sft_record(valid, opt.fields), sample, valid.where());
    const std::string fit = io::fit_to_seq_len(sample, opt.seq_len,
                                               opt.overflow == "drop" ? io::SftOverflow::Drop : io::SftOverflow::Truncate);
    std::printf("---- %s: %zu tokens, %zu trained%s\n%s\n", record.where().c_str(), sample.tokens.size(),
                sample.trained_tokens(), fit.empty() ? "" : (" — " + fit).c_str(),
                io::render_for_inspection(sample, tok, color).c_str());
  }
  return 0;
}

int run(const TokenizeOptions& opt, const char* argv0) {
  if (opt.inspect == 0) validate_output(opt.output);
  const io::Tokenizer tok = io::Tokenizer::load(opt.tokenizer);
  IRIS_USER_CHECK(!opt.allow_special || tok.byte_level(), "--allow-special needs a byte-level BPE tokenizer (Llama 3's "
                  "tokenizer.model or a tokenizer.json); {} is a sentencepiece model", opt.tokenizer);
  const std::vector<io::InputFile> files = io::list_input_files(opt.inputs);
  IRIS_USER_CHECK(opt.sft || !opt.append_eos || tok.eos_id() >= 0,
                  "tokenizer {} defines no EOS token; pass --append-eos false to write documents without one",
                  opt.tokenizer);

  io::PipelineOptions pipeline;
  pipeline.workers = opt.workers;
  pipeline.skip_bad_lines = opt.skip_bad_lines;
  pipeline.progress_seconds = opt.progress_seconds;
  io::RecordReader reader(files);
  std::atomic<uint64_t> trained{0};

  if (!opt.sft) {
    io::IndexedDatasetWriter writer(opt.output, tok.vocab_size());
    const std::string field = opt.text_field;
    IRIS_USER_CHECK(!field.empty(), "the JSONL text field name must not be empty");
    auto transform = [&](const io::InputRecord& raw, io::TokenizedRecord& out) {
      io::InputRecord scratch;
      const io::InputRecord& record = io::valid_utf8_record(raw, opt.replace_invalid, scratch);
      const std::string text = io::parse_text_record(record, field);
      if (text.empty()) {
        out.skip_reason = "empty documents";
        return;
      }
      out.tokens.clear();
      if (tok.bos_id() >= 0) out.tokens.push_back(tok.bos_id());
      const std::vector<int32_t> ids = tok.encode(text, opt.allow_special);
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
      if (opt.append_eos) out.tokens.push_back(tok.eos_id());
    };
    auto sink = [&](const io::InputRecord&, const io::TokenizedRecord& r) { writer.add_document(r.tokens); };
    const io::PipelineSummary s = io::run_tokenize_pipeline(reader, io::total_input_bytes(files), transform, sink,
                                                            pipeline);
    IRIS_USER_CHECK(s.kept > 0, "the {} input file(s) contain no text; nothing to write", s.files);
    writer.finalize();
    print_summary(opt, s, 0, writer.dtype() == io::IndexedDType::U16 ? "uint16" : "int32");
    return 0;
  }

  const std::string dir = opt.templates_dir.empty() ? default_templates_dir(argv0) : opt.templates_dir;
  io::SftTemplate tmpl = io::SftTemplate::load(opt.template_name, dir);
  if (!opt.today_date.empty()) tmpl.set_today_date(opt.today_date);
  const io::SftFormatter formatter(std::move(tmpl), io::SftVocabulary::of(tok, opt.allow_special), opt.train_on_inputs);
  if (opt.inspect > 0) return inspect_samples(opt, tok, formatter);
  const io::SftOverflow overflow = opt.overflow == "drop" ? io::SftOverflow::Drop : io::SftOverflow::Truncate;
  io::SftDatasetWriter writer(opt.output, tok.vocab_size());
  auto transform = [&](const io::InputRecord& raw, io::TokenizedRecord& out) {
    io::InputRecord scratch;
    const io::InputRecord& record = io::valid_utf8_record(raw, opt.replace_invalid, scratch);
    IRIS_USER_CHECK(record.format != io::InputFormat::Text, "{}: --sft needs JSONL, JSON or CSV records, not a text "
                    "file", record.where());
    io::FormattedSample sample;
    formatter.format(io::parse_sft_record(record, opt.fields), sample, record.where());
    bool truncated = false;
    out.skip_reason = io::fit_to_seq_len(sample, opt.seq_len, overflow, &truncated);
    if (truncated && out.skip_reason.empty()) out.kept_note = "truncated to --seq-len (kept)";
    out.tokens = std::move(sample.tokens);
    out.loss_mask = std::move(sample.loss_mask);
  };
  auto sink = [&](const io::InputRecord&, const io::TokenizedRecord& r) {
    writer.add_sample(r.tokens, r.loss_mask);
    for (uint8_t m : r.loss_mask) trained += m;
  };
  const io::PipelineSummary s = io::run_tokenize_pipeline(reader, io::total_input_bytes(files), transform, sink,
                                                          pipeline);
  IRIS_USER_CHECK(s.kept > 0, "no SFT sample left to write from {} record(s) in {} file(s)", s.records, s.files);
  writer.finalize();
  print_summary(opt, s, trained, writer.tokens().dtype() == io::IndexedDType::U16 ? "uint16" : "int32");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  iris::init_logging(0, 1);
  return iris::run_tool("iris-tokenize", [&] {
    TokenizeOptions opt;
    std::string help;
    if (!parse_options(argc, argv, opt, help)) {
      std::cout << help << "\n";
      return iris::kExitOk;
    }
    return run(opt, argv[0]);
  });
}
