// A sharded copy-on-write hash map: copying it is cheap and a write copies one shard.
//
// The store keeps each index in one of these so that a new snapshot can share
// every untouched shard with the previous one. Copying a CowMap copies
// kShards pointers; the first write to a shard after a copy clones that shard
// (about size()/kShards entries), later writes to it are in place.
//
// Threading: a CowMap that has been published inside a snapshot is only read.
// The writer mutates only its private copy; a shard is cloned unless that copy
// is its sole owner, and no other thread can acquire a reference to a shard
// that only the writer's private copy holds, so use_count() == 1 is a
// reliable test here.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace ztunnel::state {

// Lets string-keyed maps be searched with a string_view without allocating.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class K, class V, class Hash = std::hash<K>, std::size_t kShards = 256>
class CowMap {
 public:
  using Map = std::unordered_map<K, V, Hash, std::equal_to<>>;

  // `key` may be any type Hash and K compare with (string_view for strings).
  template <class Q>
  const V* find(const Q& key) const {
    const auto& shard = shards_[shard_of(key)];
    if (!shard) return nullptr;
    auto it = shard->find(key);
    return it == shard->end() ? nullptr : &it->second;
  }

  // A writable slot for `key`, default-constructed if absent.
  V& operator[](const K& key) {
    Map& m = own(shard_of(key));
    auto [it, inserted] = m.try_emplace(key);
    if (inserted) ++size_;
    return it->second;
  }

  // Writable value of an existing key, or null; clones the shard only if the
  // key is present.
  V* find_mutable(const K& key) {
    std::size_t i = shard_of(key);
    if (!shards_[i] || !shards_[i]->contains(key)) return nullptr;
    return &own(i).find(key)->second;
  }

  void set(const K& key, V value) { (*this)[key] = std::move(value); }

  bool erase(const K& key) {
    std::size_t i = shard_of(key);
    if (!shards_[i] || !shards_[i]->contains(key)) return false;
    own(i).erase(key);
    --size_;
    return true;
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& shard : shards_) {
      if (!shard) continue;
      for (const auto& [k, v] : *shard) f(k, v);
    }
  }

 private:
  template <class Q>
  std::size_t shard_of(const Q& key) const {
    // Mix before reducing: std::hash of an integer-like key can be the
    // identity, which would put neighbouring keys in neighbouring shards.
    std::size_t h = Hash{}(key);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h % kShards;
  }

  Map& own(std::size_t i) {
    auto& shard = shards_[i];
    if (!shard) {
      shard = std::make_shared<Map>();
    } else if (shard.use_count() != 1) {
      shard = std::make_shared<Map>(*shard);
    }
    return *shard;
  }

  std::array<std::shared_ptr<Map>, kShards> shards_;
  std::size_t size_ = 0;
};

}  // namespace ztunnel::state
