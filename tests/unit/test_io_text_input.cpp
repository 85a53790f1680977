// Input enumeration for iris-tokenize: which files a directory yields and in what order, JSON Lines
// parsing, and errors that name FILE:LINE.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/tokenize/text_input.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using iris::io::DocumentReader;
using iris::io::InputFormat;
using iris::io::TextDocument;

namespace {

class TextInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("iris_text_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& rel, const std::string& content) const {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  std::vector<TextDocument> read_all(const std::vector<std::string>& paths, const std::string& field = "text") const {
    DocumentReader reader(iris::io::list_input_files(paths), field);
    std::vector<TextDocument> docs;
    TextDocument doc;
    while (reader.next(doc)) docs.push_back(doc);
    return docs;
  }
  // Expects reading `paths` to throw UserError whose message holds every one of `parts`.
  void expect_error(const std::vector<std::string>& paths, const std::vector<std::string>& parts,
                    const std::string& field = "text") const {
    try {
      read_all(paths, field);
      FAIL() << "no error";
    } catch (const iris::UserError& e) {
      for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message '" << e.what() << "' lacks '" << part << "'";
    }
  }

  fs::path dir_;
};

TEST_F(TextInputTest, DirectoryIsSearchedRecursivelyInSortedOrder) {
  write("corpus/b.txt", "bee");
  write("corpus/a.md", "# ay");
  const std::string jsonl = write("corpus/sub/c.jsonl", "{\"text\": \"one\"}\n\n  \n{\"text\": \"two\", \"id\": 2}\r\n");
  const std::string json = write("corpus/sub/d.json", "{\"text\": \"three\"}");
  write("corpus/skip.csv", "not searched");
  write("corpus/.hidden.txt", "hidden");
  write("corpus/.cache/x.txt", "hidden dir");
  write("corpus/Upper.TXT", "upper");

  const auto files = iris::io::list_input_files({(dir_ / "corpus").string()});
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(fs::relative(f.path, dir_ / "corpus").string());
  EXPECT_EQ(names, (std::vector<std::string>{"Upper.TXT", "a.md", "b.txt", "sub/c.jsonl", "sub/d.json"}));
  EXPECT_EQ(files[3].format, InputFormat::JsonLines);
  EXPECT_EQ(files[4].format, InputFormat::JsonLines);
  EXPECT_EQ(files[0].format, InputFormat::Text);

  const auto docs = read_all({(dir_ / "corpus").string()});
  ASSERT_EQ(docs.size(), 6u);
  EXPECT_EQ(docs[0].text, "upper");
  EXPECT_EQ(docs[1].text, "# ay");
  EXPECT_EQ(docs[2].text, "bee");
  EXPECT_EQ(docs[2].where(), (dir_ / "corpus/b.txt").string());
  EXPECT_EQ(docs[3].text, "one");
  EXPECT_EQ(docs[3].where(), jsonl + ":1");
  EXPECT_EQ(docs[4].text, "two");
  EXPECT_EQ(docs[4].where(), jsonl + ":4");
  EXPECT_EQ(docs[5].text, "three");
  EXPECT_EQ(docs[5].where(), json + ":1");
}

TEST_F(TextInputTest, PathsKeepTheirOrderAndNamedFilesGoByExtension) {
  const std::string z = write("z.rst", "zed\nwith two lines\n");
  const std::string a = write("a.jsonl", "{\"body\": \"alpha\", \"text\": 1}\n");
  const auto docs = read_all({z, a}, "body");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "zed\nwith two lines\n");
  EXPECT_EQ(docs[1].text, "alpha");
}

TEST_F(TextInputTest, JsonStringsAreUnescaped) {
  const std::string f = write("u.jsonl", R"({"text": "line\nbreak \"quoted\" caf\u00e9"})" "\n");
  const auto docs = read_all({f});
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].text, "line\nbreak \"quoted\" caf\xc3\xa9");
}

TEST_F(TextInputTest, NonexistentPathIsNamed) {
  const std::string missing = (dir_ / "nope").string();
  expect_error({missing}, {missing, "does not exist"});
}

TEST_F(TextInputTest, EmptyInputSetIsAnError) {
  write("empty/notes.csv", "x");
  expect_error({(dir_ / "empty").string()}, {(dir_ / "empty").string(), "no input files"});
  expect_error({}, {"no input"});
}

TEST_F(TextInputTest, MalformedJsonLineNamesFileAndLine) {
  const std::string f = write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"text\": \"broken\n");
  expect_error({f}, {f + ":3", "malformed JSON"});
}

TEST_F(TextInputTest, MissingFieldNamesFileLineAndKeys) {
  const std::string f = write("missing.jsonl", "{\"text\": \"ok\"}\n{\"content\": \"x\", \"id\": 1}\n");
  expect_error({f}, {f + ":2", "no \"text\" field", "content, id", "--text-field"});
  expect_error({f}, {f + ":1", "no \"body\" field"}, "body");
}

TEST_F(TextInputTest, NonStringFieldIsNamed) {
  const std::string f = write("num.jsonl", "{\"text\": 12}\n");
  expect_error({f}, {f + ":1", "\"text\"", "number", "expected a string"});
  const std::string n = write("null.jsonl", "{\"text\": \"a\"}\n{\"text\": null}\n");
  expect_error({n}, {n + ":2", "null"});
}

TEST_F(TextInputTest, NonObjectLineIsNamed) {
  const std::string g = write("list.jsonl", "[\"a\", \"b\"]\n");
  expect_error({g}, {g + ":1", "expected a JSON object", "array"});
}

TEST_F(TextInputTest, JsonArrayIsStreamedElementByElement) {
  const std::string f = write("arr.json", "[\n  {\"text\": \"a, [b]\"},\n  {\"meta\": {\"text\": \"}\\\"{\"}, "
                                          "\"text\": \"b\"}, {\"text\": \"c\"}\n]\n");
  const std::vector<TextDocument> docs = read_all({f});
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, "a, [b]");
  EXPECT_EQ(docs[1].text, "b");
  EXPECT_EQ(docs[2].text, "c");
  EXPECT_EQ(docs[0].line, 2u);
  EXPECT_EQ(docs[2].line, 3u);
  expect_error({f}, {f + ":2 (record 1)", "no \"meta.text\" field"}, "meta.text");

}

TEST_F(TextInputTest, NestedFieldsByDottedPath) {
  const std::string f = write("pubmedqa.jsonl",
                              "{\"context\": {\"contexts\": [\"one.\", \"two.\"]}, \"a.b\": \"literal\"}\n");
  EXPECT_EQ(read_all({f}, "context.contexts")[0].text, "one.\n\ntwo.");
  EXPECT_EQ(read_all({f}, "a.b")[0].text, "literal");
  expect_error({f}, {f + ":1", "context.missing", "--text-field"}, "context.missing");
}

TEST_F(TextInputTest, JsonArrayErrorsNameFileLineAndRecord) {
  const std::string open = write("open.json", "[{\"text\": \"a\"},\n{\"text\": \"b\"}\n");
  expect_error({open}, {open + ":2", "not closed"});
  const std::string bad = write("bad.json", "[{\"text\": \"a\"},\n{\"text\": b}]\n");
  expect_error({bad}, {bad + ":2 (record 2)", "malformed JSON"});
  const std::string after = write("after.json", "[{\"text\": \"a\"}] x\n");
  expect_error({after}, {after + ":1", "after the end"});
}

TEST_F(TextInputTest, CsvRowsWithQuotedFieldsAndMissingColumn) {
  const std::string f = write("qa.csv", "question,answer\r\n\"a, b\",\"say \"\"hi\"\"\r\nthere\"\r\n\r\nq2,a2\n");
  const std::vector<TextDocument> docs = read_all({f}, "answer");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "say \"hi\"\r\nthere");
  EXPECT_EQ(docs[0].line, 2u);
  EXPECT_EQ(docs[1].text, "a2");
  EXPECT_EQ(docs[1].line, 5u);
  expect_error({f}, {f + ":2 (record 1)", "no \"text\" column", "question, answer", "--text-field"});
  const std::string ragged = write("ragged.csv", "a,b\n1,2\n3\n");
  expect_error({ragged}, {ragged + ":3 (record 2)", "1 fields, but the header has 2"}, "a");
  const std::string open = write("open.csv", "a,b\n1,\"2\n3\n");
  expect_error({open}, {open + ":", "not closed"}, "a");
}

}  // namespace
