// Builds a yaml::Document from libyaml's parse events.
#include "xds/yaml_tree.h"

#include <fmt/format.h>
#include <yaml.h>

#include <limits>
#include <memory>
#include <unordered_map>

namespace ztunnel::xds::yaml {

bool Node::is_null() const { return defined() && doc_->slot(index_).kind == Document::Kind::kNull; }
bool Node::is_scalar() const {
  return defined() && doc_->slot(index_).kind == Document::Kind::kScalar;
}
bool Node::is_sequence() const {
  return defined() && doc_->slot(index_).kind == Document::Kind::kSequence;
}
bool Node::is_map() const { return defined() && doc_->slot(index_).kind == Document::Kind::kMap; }

std::string_view Node::scalar() const {
  if (!is_scalar()) return {};
  const Document::Slot& s = doc_->slot(index_);
  return std::string_view(doc_->text_).substr(s.begin, s.count);
}

Mark Node::mark() const {
  if (!defined()) return {};
  const Document::Slot& s = doc_->slot(index_);
  return {static_cast<int>(s.line), static_cast<int>(s.column)};
}

size_t Node::size() const {
  if (is_sequence()) return doc_->slot(index_).count;
  if (is_map()) return doc_->slot(index_).count / 2;
  return 0;
}

Node Node::operator[](std::string_view key) const {
  // A linear scan: local-config maps hold a few dozen keys at most, and the
  // first match wins, as in yaml-cpp.
  for (const Pair& pair : entries()) {
    if (pair.first.is_scalar() && pair.first.scalar() == key) return pair.second;
  }
  return {};
}

Node::Range<Node, 1> Node::elements() const {
  if (!is_sequence()) return {doc_, nullptr, nullptr};
  const Document::Slot& s = doc_->slot(index_);
  const uint32_t* first = doc_->children_.data() + s.begin;
  return {doc_, first, first + s.count};
}

Node::Range<Node::Pair, 2> Node::entries() const {
  if (!is_map()) return {doc_, nullptr, nullptr};
  const Document::Slot& s = doc_->slot(index_);
  const uint32_t* first = doc_->children_.data() + s.begin;
  return {doc_, first, first + s.count};
}

namespace {

struct ParserDeleter {
  void operator()(yaml_parser_t* p) const {
    yaml_parser_delete(p);
    delete p;
  }
};

// Owns one event between yaml_parser_parse and the next call.
struct Event {
  yaml_event_t event{};
  ~Event() { yaml_event_delete(&event); }
};

bool is_null_plain(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::string parser_error(const yaml_parser_t& p) {
  if (p.error == YAML_MEMORY_ERROR) return "out of memory";
  const char* problem = p.problem != nullptr ? p.problem : "unknown error";
  // The reader (encoding) stage knows only a byte offset.
  if (p.error == YAML_READER_ERROR) return fmt::format("byte {}: {}", p.problem_offset, problem);
  std::string out = fmt::format("line {}, column {}: {}", p.problem_mark.line + 1,
                                p.problem_mark.column + 1, problem);
  if (p.context != nullptr) {
    out += fmt::format(" ({} started at line {}, column {})", p.context, p.context_mark.line + 1,
                       p.context_mark.column + 1);
  }
  return out;
}

}  // namespace

// Turns the event stream into slots. Children of the collections still open
// wait on one shared stack and move to children_ as one run when their
// collection ends, so every collection's children are contiguous.
class Builder {
 public:
  explicit Builder(Document* doc) : doc_(doc) {}

  // Returns an error message, or empty when the first document is complete.
  std::string run(std::string_view text) {
    std::unique_ptr<yaml_parser_t, ParserDeleter> parser(new yaml_parser_t);
    if (yaml_parser_initialize(parser.get()) == 0) {
      delete parser.release();  // not initialised: yaml_parser_delete must not see it
      return "out of memory";
    }
    yaml_parser_set_input_string(parser.get(), reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    doc_->text_.reserve(text.size());
    bool in_document = false;
    for (;;) {
      Event e;
      if (yaml_parser_parse(parser.get(), &e.event) == 0) return parser_error(*parser);
      const yaml_event_t& ev = e.event;
      switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
          in_document = true;
          break;
        case YAML_DOCUMENT_END_EVENT:
        case YAML_STREAM_END_EVENT:
          if (!in_document) add_empty_root();
          return {};
        case YAML_SCALAR_EVENT: {
          const std::string_view value(reinterpret_cast<const char*>(ev.data.scalar.value),
                                       ev.data.scalar.length);
          // Only an untagged plain scalar resolves to null; `'null'` and
          // `!!str null` stay text.
          const bool null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                            ev.data.scalar.tag == nullptr && is_null_plain(value);
          uint32_t index = 0;
          if (null) {
            index = add_slot(Document::Kind::kNull, ev.start_mark);
          } else {
            index = add_slot(Document::Kind::kScalar, ev.start_mark);
            Document::Slot& s = doc_->slots_[index];
            s.begin = static_cast<uint32_t>(doc_->text_.size());
            s.count = static_cast<uint32_t>(value.size());
            doc_->text_.append(value);
          }
          anchor(ev.data.scalar.anchor, index);
          attach(index);
          break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
          const bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
          const uint32_t index =
              add_slot(seq ? Document::Kind::kSequence : Document::Kind::kMap, ev.start_mark);
          // Anchored before its children, so an alias inside refers back to it.
          anchor(seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor, index);
          open_.push_back({index, pending_.size()});
          break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          const Open top = open_.back();
          open_.pop_back();
          Document::Slot& s = doc_->slots_[top.index];
          s.begin = static_cast<uint32_t>(doc_->children_.size());
          s.count = static_cast<uint32_t>(pending_.size() - top.first_child);
          doc_->children_.insert(doc_->children_.end(), pending_.begin() + top.first_child,
                                 pending_.end());
          pending_.resize(top.first_child);
          attach(top.index);
          break;
        }
        case YAML_ALIAS_EVENT: {
          // libyaml's parser leaves alias resolution to its loader; the tree
          // shares the anchored node, as yaml-cpp does.
          const std::string name(reinterpret_cast<const char*>(ev.data.alias.anchor));
          auto it = anchors_.find(name);
          if (it == anchors_.end()) {
            return fmt::format("line {}, column {}: unknown anchor \"{}\"", ev.start_mark.line + 1,
                               ev.start_mark.column + 1, name);
          }
          attach(it->second);
          break;
        }
        default:  // stream start
          break;
      }
    }
  }

 private:
  struct Open {
    uint32_t index;
    size_t first_child;  // position in pending_
  };

  uint32_t add_slot(Document::Kind kind, const yaml_mark_t& mark) {
    Document::Slot s;
    s.kind = kind;
    s.line = static_cast<uint32_t>(mark.line);
    s.column = static_cast<uint32_t>(mark.column);
    doc_->slots_.push_back(s);
    return static_cast<uint32_t>(doc_->slots_.size() - 1);
  }

  void add_empty_root() { doc_->root_ = add_slot(Document::Kind::kNull, yaml_mark_t{}); }

  void anchor(const yaml_char_t* name, uint32_t index) {
    // A later anchor of the same name shadows the earlier one (YAML 1.2 §7.1).
    if (name != nullptr) anchors_[std::string(reinterpret_cast<const char*>(name))] = index;
  }

  void attach(uint32_t index) {
    if (open_.empty()) {
      doc_->root_ = index;
    } else {
      pending_.push_back(index);
    }
  }

  Document* doc_;
  std::vector<Open> open_;
  std::vector<uint32_t> pending_;
  std::unordered_map<std::string, uint32_t> anchors_;
};

core::Result<Document> Document::load(std::string_view text) {
  // Offsets and counts are 32-bit; a local config is megabytes at most.
  if (text.size() >= std::numeric_limits<uint32_t>::max()) {
    return core::Error{"document larger than 4 GiB"};
  }
  Document doc;
  if (std::string err = Builder(&doc).run(text); !err.empty()) return core::Error{std::move(err)};
  return doc;
}

}  // namespace ztunnel::xds::yaml
