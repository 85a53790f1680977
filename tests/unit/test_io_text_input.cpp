// Input enumeration for iris-tokenize: which files a directory yields and in what order, JSON Lines
// parsing, and errors that name FILE:LINE.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/text_input.h"
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
  const std::string f = write("arr.json", "[\n{\"text\": \"a\"}\n]\n");
  expect_error({f}, {f + ":1", "malformed JSON"});
  const std::string g = write("list.jsonl", "[\"a\", \"b\"]\n");
  expect_error({g}, {g + ":1", "expected a JSON object", "array"});
}

}  // namespace
