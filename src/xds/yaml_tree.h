// A read-only YAML document tree built from libyaml's event parser, offering
// only what the local-config reader needs: typed nodes, key lookup, iteration
// and source positions.
//
// Ownership: a Document owns every node; a Node is a (document, index) handle
// that must not outlive its Document. Nodes live in one vector, scalar text in
// one string and child lists in one index vector, so a large file costs a
// handful of allocations instead of several per node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace ztunnel::xds::yaml {

// A 0-based position in the source text; null for a node that is absent.
struct Mark {
  int line = -1;
  int column = -1;
  bool is_null() const { return line < 0; }
};

class Document;

class Node {
 public:
  // The absent node: what a lookup of a missing key returns.
  Node() = default;

  // False only for the absent node.
  bool defined() const { return doc_ != nullptr; }
  // A plain `~`, `null`, `Null`, `NULL` or an empty value, as YAML 1.1
  // readers (and yaml-cpp) resolve them; a quoted "null" is a scalar.
  bool is_null() const;
  bool is_scalar() const;
  bool is_sequence() const;
  bool is_map() const;

  // The text of a scalar; empty for anything else.
  std::string_view scalar() const;
  Mark mark() const;
  // Elements of a sequence or pairs of a map; 0 for anything else.
  size_t size() const;

  // The value of the first pair whose key is the scalar `key`; absent if this
  // is not a map or holds no such key.
  Node operator[](std::string_view key) const;

  struct Pair;  // a map's key and value, defined below once Node is complete

  // Iterates a run of child indices, yielding a Node (step 1, sequences) or a
  // Pair (step 2, maps).
  template <class Value, size_t kStep>
  class Range {
   public:
    class iterator {
     public:
      iterator(const Document* doc, const uint32_t* at) : doc_(doc), at_(at) {}
      Value operator*() const;
      iterator& operator++() {
        at_ += kStep;
        return *this;
      }
      bool operator==(const iterator& other) const { return at_ == other.at_; }

     private:
      const Document* doc_;
      const uint32_t* at_;
    };
    Range(const Document* doc, const uint32_t* begin, const uint32_t* end)
        : doc_(doc), begin_(begin), end_(end) {}
    iterator begin() const { return {doc_, begin_}; }
    iterator end() const { return {doc_, end_}; }

   private:
    const Document* doc_;
    const uint32_t* begin_;
    const uint32_t* end_;
  };

  // Elements of a sequence; empty for anything else.
  Range<Node, 1> elements() const;
  // Key/value pairs of a map in source order; empty for anything else.
  Range<Pair, 2> entries() const;

 private:
  friend class Document;
  Node(const Document* doc, uint32_t index) : doc_(doc), index_(index) {}

  const Document* doc_ = nullptr;
  uint32_t index_ = 0;
};

struct Node::Pair {
  Node first;
  Node second;
};

class Document {
 public:
  // Parses the first document of `text` (later ones are ignored, as
  // yaml-cpp's Load does). Errors read "line L, column C: problem".
  static core::Result<Document> load(std::string_view text);

  // The top node; a null node for an empty stream.
  Node root() const { return Node(this, root_); }

  // Movable so that it can travel in a Result; a Node holds the Document's
  // address, so take nodes only once it has reached its final place.
  Document(Document&&) = default;
  Document& operator=(Document&&) = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

 private:
  friend class Node;
  friend class Builder;
  Document() = default;

  enum class Kind : uint8_t { kNull, kScalar, kSequence, kMap };
  struct Slot {
    uint32_t begin = 0;  // scalar: offset in text_; collection: offset in children_
    uint32_t count = 0;  // scalar: bytes; sequence: elements; map: keys + values
    uint32_t line = 0;
    uint32_t column = 0;
    Kind kind = Kind::kNull;
  };

  const Slot& slot(uint32_t index) const { return slots_[index]; }

  std::vector<Slot> slots_;
  std::vector<uint32_t> children_;  // a map's run alternates key, value
  std::string text_;                // every scalar's text, back to back
  uint32_t root_ = 0;
};

template <>
inline Node Node::Range<Node, 1>::iterator::operator*() const {
  return Node(doc_, *at_);
}
template <>
inline Node::Pair Node::Range<Node::Pair, 2>::iterator::operator*() const {
  return Pair{Node(doc_, at_[0]), Node(doc_, at_[1])};
}

}  // namespace ztunnel::xds::yaml
