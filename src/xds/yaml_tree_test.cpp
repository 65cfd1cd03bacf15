// Unit tests for the libyaml-backed document tree.
#include "xds/yaml_tree.h"

#include <string>
#include <vector>

#include "support/testing.h"

namespace ztunnel::xds::yaml {
namespace {

// Documents are returned inside a Result that must stay put while nodes are
// in use, so tests hold the Result itself.
core::Result<Document> load_ok(std::string_view text) {
  auto doc = Document::load(text);
  REQUIRE_MESSAGE(doc.has_value(), (doc ? "" : doc.error().message));
  return doc;
}

std::string load_error(std::string_view text) {
  auto doc = Document::load(text);
  REQUIRE_FALSE(doc.has_value());
  return doc.error().message;
}

std::vector<std::string> scalars(const Node& seq) {
  std::vector<std::string> out;
  for (const Node& n : seq.elements()) out.emplace_back(n.scalar());
  return out;
}

}  // namespace

TEST_CASE("a block mapping of scalars reads back by key") {
  auto doc = load_ok("name: pod-1\nport: 8080\n");
  const Node root = doc->root();
  CHECK(root.is_map());
  CHECK(root.size() == 2);
  CHECK(root["name"].scalar() == "pod-1");
  CHECK(root["port"].scalar() == "8080");
  CHECK(root["port"].is_scalar());
}

TEST_CASE("a missing key is absent, and so is any lookup on a non-map") {
  auto doc = load_ok("a: b\n");
  const Node missing = doc->root()["nope"];
  CHECK_FALSE(missing.defined());
  CHECK_FALSE(missing.is_null());
  CHECK_FALSE(missing.is_scalar());
  CHECK(missing.mark().is_null());
  CHECK(missing.size() == 0);
  CHECK_FALSE(doc->root()["a"]["b"].defined());
  CHECK_FALSE(missing["deeper"].defined());
}

TEST_CASE("block and flow collections nest and keep their order") {
  auto doc = load_ok(
      "list:\n"
      "- one\n"
      "- {k: v, n: [1, 2]}\n"
      "- [x, 'y']\n");
  const Node list = doc->root()["list"];
  REQUIRE(list.is_sequence());
  REQUIRE(list.size() == 3);
  std::vector<Node> items;
  for (const Node& n : list.elements()) items.push_back(n);
  CHECK(items[0].scalar() == "one");
  CHECK(items[1].is_map());
  CHECK(scalars(items[1]["n"]) == std::vector<std::string>{"1", "2"});
  CHECK(scalars(items[2]) == std::vector<std::string>{"x", "y"});

  std::vector<std::string> keys;
  for (const auto& pair : items[1].entries()) keys.emplace_back(pair.first.scalar());
  CHECK(keys == std::vector<std::string>{"k", "n"});
}

TEST_CASE("quoted and block scalars are unescaped and folded by libyaml") {
  auto doc = load_ok(
      "dq: \"a\\tb\\u00e9\"\n"
      "sq: 'it''s'\n"
      "lit: |\n  line1\n  line2\n"
      "fold: >-\n  one\n  two\n");
  const Node root = doc->root();
  CHECK(root["dq"].scalar() == "a\tb\xc3\xa9");
  CHECK(root["sq"].scalar() == "it's");
  CHECK(root["lit"].scalar() == "line1\nline2\n");
  CHECK(root["fold"].scalar() == "one two");
}

TEST_CASE("plain null spellings and empty values are null; quoted or tagged ones are text") {
  auto doc = load_ok(
      "a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: 'null'\ng: \"\"\nh: !!str null\ni: nil\n"
      "j: [~, '']\n");
  const Node root = doc->root();
  for (const char* key : {"a", "b", "c", "d", "e"}) {
    CAPTURE(key);
    CHECK(root[key].defined());
    CHECK(root[key].is_null());
    CHECK_FALSE(root[key].is_scalar());
    CHECK(root[key].scalar().empty());
  }
  CHECK(root["f"].is_scalar());
  CHECK(root["f"].scalar() == "null");
  CHECK(root["g"].is_scalar());
  CHECK(root["g"].scalar().empty());
  CHECK(root["h"].is_scalar());
  CHECK(root["i"].is_scalar());
  std::vector<Node> j;
  for (const Node& n : root["j"].elements()) j.push_back(n);
  CHECK(j[0].is_null());
  CHECK(j[1].is_scalar());
}

TEST_CASE("an empty stream or a comment-only one is a null root") {
  for (const char* text : {"", "# nothing\n", "\n\n"}) {
    auto doc = load_ok(text);
    CHECK(doc->root().defined());
    CHECK(doc->root().is_null());
  }
}

TEST_CASE("only the first document is read, as yaml-cpp's Load does") {
  auto doc = load_ok("a: 1\n---\nb: 2\n--- [unclosed\n");
  CHECK(doc->root()["a"].scalar() == "1");
  CHECK_FALSE(doc->root()["b"].defined());
}

TEST_CASE("an alias is the anchored node itself") {
  auto doc = load_ok(
      "base: &b {port: 80, ips: [10.0.0.1]}\n"
      "copy: *b\n"
      "name: &n pod\n"
      "again: *n\n");
  const Node root = doc->root();
  CHECK(root["copy"]["port"].scalar() == "80");
  CHECK(scalars(root["copy"]["ips"]) == std::vector<std::string>{"10.0.0.1"});
  CHECK(root["again"].scalar() == "pod");
  // Sharing, not copying: the alias reports the anchor's position.
  CHECK(root["copy"].mark().line == 0);
  CHECK(root["copy"].mark().column == 6);
}

TEST_CASE("an alias to an unknown anchor is an error with its position") {
  std::string err = load_error("a: 1\nb: *missing\n");
  CHECK(err.find("line 2, column 4") != std::string::npos);
  CHECK(err.find("\"missing\"") != std::string::npos);
}

TEST_CASE("marks are 0-based line and column of the node's first character") {
  auto doc = load_ok(
      "workloads:\n"
      "- namespace: default\n"
      "  workloadIps: [10.0.0.1, 10.0.0.2]\n");
  const Node w = *doc->root()["workloads"].elements().begin();
  CHECK(w.mark().line == 1);
  CHECK(w.mark().column == 2);
  std::vector<Mark> ips;
  for (const Node& n : w["workloadIps"].elements()) ips.push_back(n.mark());
  CHECK(ips[1].line == 2);
  CHECK(ips[1].column == 26);
  const auto pair = *w.entries().begin();
  CHECK(pair.first.mark().column == 2);
  CHECK(pair.second.mark().column == 13);
}

TEST_CASE("the first of duplicate keys wins a lookup; iteration sees both") {
  auto doc = load_ok("k: first\nk: second\n");
  CHECK(doc->root()["k"].scalar() == "first");
  CHECK(doc->root().size() == 2);
}

TEST_CASE("a non-scalar key is iterated but never matches a lookup") {
  auto doc = load_ok("? [a]\n: 1\nb: 2\n");
  const Node root = doc->root();
  CHECK(root.size() == 2);
  CHECK((*root.entries().begin()).first.is_sequence());
  CHECK(root["b"].scalar() == "2");
}

TEST_CASE("an empty collection has size 0 and iterates nothing") {
  auto doc = load_ok("s: []\nm: {}\n");
  CHECK(doc->root()["s"].is_sequence());
  CHECK(doc->root()["s"].size() == 0);
  CHECK(doc->root()["m"].is_map());
  CHECK(doc->root()["m"].entries().begin() == doc->root()["m"].entries().end());
  // Iterating a node as the wrong kind yields nothing rather than garbage.
  CHECK(doc->root()["s"].entries().begin() == doc->root()["s"].entries().end());
  CHECK(doc->root().elements().begin() == doc->root().elements().end());
}

TEST_CASE("syntax errors name the line and column where parsing stopped") {
  std::string err = load_error("workloads:\n  - namespace: [unclosed\n");
  CHECK(err.find("line 3, column 1") != std::string::npos);
  CHECK(err.find("flow sequence") != std::string::npos);

  err = load_error("a: b\n c: d\n");
  CHECK(err.find("line 2") != std::string::npos);

  err = load_error("a: \"unterminated\n");
  CHECK(err.find("line ") != std::string::npos);
}

TEST_CASE("invalid UTF-8 is an error, not a crash") {
  CHECK(load_error("a: \xff\xfe\xfd\n").find("byte") != std::string::npos);
}

}  // namespace ztunnel::xds::yaml
