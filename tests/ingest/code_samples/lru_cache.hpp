// lru_cache.hpp - a small least-recently-used cache.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace storage::cache {

/// Why an entry left the cache.
enum class Eviction { Capacity, Expired, Explicit };

/// Counters kept by every cache.
struct Stats {
    std::size_t hits = 0;
    std::size_t misses = 0;
};

/**
 * A fixed-capacity map that evicts the least recently used key.
 */
template <typename Key, typename Value>
class LruCache {
public:
    explicit LruCache(std::size_t capacity) : capacity_(capacity) {}
    ~LruCache() = default;

    /// Looks a key up and marks it as recently used.
    std::optional<Value> get(const Key& key) {
        auto it = index_.find(key);
        if (it == index_.end()) {
            ++stats_.misses;
            return std::nullopt;
        }
        ++stats_.hits;
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
    }

    void put(const Key& key, Value value);
    void put(const Key& key, Value value, Eviction reason);

    const Stats& stats() const { return stats_; }

private:
    using Entry = std::pair<Key, Value>;
    std::size_t capacity_;
    std::list<Entry> order_;
    std::unordered_map<Key, typename std::list<Entry>::iterator> index_;
    Stats stats_;
};

// Inserts or replaces a value, evicting from the back when full.
template <typename Key, typename Value>
void LruCache<Key, Value>::put(const Key& key, Value value) {
    put(key, std::move(value), Eviction::Capacity);
}

template <typename Key, typename Value>
void LruCache<Key, Value>::put(const Key& key, Value value, Eviction reason) {
    (void)reason;
    if (order_.size() >= capacity_) {
        index_.erase(order_.back().first);
        order_.pop_back();
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
}

}  // namespace storage::cache
