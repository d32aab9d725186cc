// A table indexed by file descriptor whose entries never move.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace spindle::detail {

// O(1) lookup by fd. Entries live in fixed-size chunks allocated on first
// use, so a reference stays valid while the table grows (a callback may watch
// a new, higher fd while the loop holds a reference to another entry).
template <class Entry>
class FdTable {
 public:
  static constexpr std::size_t kChunk = 256;

  // The entry for `fd`, created (value-initialised) if needed. fd >= 0.
  Entry& at(int fd) {
    auto index = static_cast<std::size_t>(fd);
    std::size_t chunk = index / kChunk;
    if (chunk >= chunks_.size()) chunks_.resize(chunk + 1);
    if (!chunks_[chunk]) chunks_[chunk] = std::make_unique<Entry[]>(kChunk);
    return chunks_[chunk][index % kChunk];
  }

  // Starts loading the entry for `fd` into the cache (a batch of events
  // prefetches all its entries before dispatching the first). Harmless for
  // an fd without an entry.
  void prefetch(int fd) const noexcept {
    auto index = static_cast<std::size_t>(fd);
    std::size_t chunk = index / kChunk;
    if (fd < 0 || chunk >= chunks_.size() || !chunks_[chunk]) return;
    __builtin_prefetch(&chunks_[chunk][index % kChunk]);
  }

  // Calls fn(fd, entry) for every entry ever created.
  template <class Fn>
  void for_each(Fn&& fn) {
    for (std::size_t chunk = 0; chunk < chunks_.size(); ++chunk) {
      if (!chunks_[chunk]) continue;
      for (std::size_t i = 0; i < kChunk; ++i) {
        fn(static_cast<int>(chunk * kChunk + i), chunks_[chunk][i]);
      }
    }
  }

  // The entry for `fd` if one was ever created, else nullptr. Never allocates.
  Entry* find(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto index = static_cast<std::size_t>(fd);
    std::size_t chunk = index / kChunk;
    if (chunk >= chunks_.size() || !chunks_[chunk]) return nullptr;
    return &chunks_[chunk][index % kChunk];
  }

 private:
  std::vector<std::unique_ptr<Entry[]>> chunks_;
};

}  // namespace spindle::detail
