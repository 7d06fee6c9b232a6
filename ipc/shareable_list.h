// ShareableList: a list of fixed length in a shared memory block, that any
// process attaches to by name. Python 3.8+:
// multiprocessing.shared_memory.ShareableList.
//
//   mp::ShareableList<int> numbers({1, 2, 3});            // creates a block
//   auto peer = mp::ShareableList<int>::attach(numbers.name());
//   peer.set(0, 42); numbers.get(0);                       // 42
//   mp::ShareableList<std::string> words({"a", "bcd"});   // room for 8 bytes each
//
// Items are numbers (any arithmetic type, bool) or std::string. Each string
// slot has room for the longest initial string, rounded up to 8 bytes (at
// least 8); a longer one is mp::ValueError (Python's rule, per list rather
// than per item). Negative indices count from the end; out of range is
// mp::IndexError. The block is owned as SharedMemory's (tracked by default).
//
// Thread safety: none, as Python's: the items are raw shared memory; guard
//   concurrent writers with a Lock.
// Sharing: copies share the block; serializable (by name: the receiver
//   attaches).
#ifndef IPC_SHAREABLE_LIST_H_
#define IPC_SHAREABLE_LIST_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "ipc/shared_memory.h"

namespace mp {
namespace internal {

// The block's layout: this header, then `count` slots of `slot` bytes. A
// string slot is a uint64 length and `slot - 8` bytes of room.
struct ShareableListHeader {
  uint64_t magic;
  uint64_t item_type;  // ShareableItemType<T>
  uint64_t count;
  uint64_t slot;
};
constexpr uint64_t kShareableListMagic = 0x6d70534c69737431;  // "mpSList1"

template <class T>
constexpr uint64_t ShareableItemType() {
  if constexpr (std::is_same_v<T, std::string>) {
    return 1;
  } else {
    static_assert(std::is_arithmetic_v<T>, "ShareableList<T>: T is a number, bool or std::string");
    return (std::is_floating_point_v<T> ? 0x200 : std::is_signed_v<T> ? 0x100 : 0x300) + sizeof(T);
  }
}

// CheckShareableList validates an attached block (its bytes are another
// process's: untrusted) and returns its header; mp::ValueError if the block
// is not a ShareableList of this item type.
const ShareableListHeader& CheckShareableList(const SharedMemory& shm, uint64_t item_type);

}  // namespace internal

template <class T>
class ShareableList {
 public:
  static constexpr bool kIsString = std::is_same_v<T, std::string>;

  // Creates a block holding `values` (a range of T, or of what converts to
  // T). track: as SharedMemory's.
  template <class Range>
  explicit ShareableList(const Range& values, bool track = true) {
    std::vector<T> items(values.begin(), values.end());
    size_t slot = sizeof(T);
    if constexpr (kIsString) {
      size_t longest = 0;
      for (const auto& s : items) longest = std::max(longest, s.size());
      slot = 8 + std::max<size_t>(8, (longest + 7) / 8 * 8);
    }
    const size_t size = sizeof(internal::ShareableListHeader) + std::max<size_t>(1, items.size() * slot);
    shm_ = std::make_shared<SharedMemory>(SharedMemory::create, size, "", track);
    auto* h = reinterpret_cast<internal::ShareableListHeader*>(shm_->buf().data());
    *h = {internal::kShareableListMagic, internal::ShareableItemType<T>(), items.size(), slot};
    Bind();
    for (size_t i = 0; i < items.size(); ++i) Write(i, items[i]);
  }
  explicit ShareableList(std::initializer_list<T> values, bool track = true)
      : ShareableList(std::vector<T>(values), track) {}
  // attach: the list in block `name`; mp::Error if there is none,
  // mp::ValueError if it is not a ShareableList<T>.
  static ShareableList attach(std::string name) {
    ShareableList list;
    list.shm_ = std::make_shared<SharedMemory>(std::move(name));
    list.Bind();
    return list;
  }
  ShareableList() = default;  // refers to nothing (to decode into)

  size_t size() const { return count_; }
  const std::string& name() const { return shm().name(); }
  SharedMemory& shm() const {
    if (!shm_) throw ValueError("ShareableList: refers to no block");
    return *shm_;
  }

  T get(long index) const { return Read(Index(index)); }
  // set: mp::ValueError for a string longer than its slot's room.
  void set(long index, const T& value) { Write(Index(index), value); }
  std::vector<T> to_vector() const {
    std::vector<T> out;
    for (size_t i = 0; i < count_; ++i) out.push_back(Read(i));
    return out;
  }
  size_t count(const T& value) const {
    size_t n = 0;
    for (size_t i = 0; i < count_; ++i) n += Read(i) == value;
    return n;
  }
  // index of the first item equal to `value`; mp::ValueError if none.
  size_t index(const T& value) const {
    for (size_t i = 0; i < count_; ++i) {
      if (Read(i) == value) return i;
    }
    throw ValueError("ShareableList.index: value not in list");
  }

  template <class Archive>
  void save(Archive& ar) const {
    ar(name());
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string name;
    ar(name);
    *this = attach(std::move(name));
  }

 private:
  void Bind() {
    const auto& h = internal::CheckShareableList(*shm_, internal::ShareableItemType<T>());
    count_ = h.count;
    slot_ = h.slot;
    if constexpr (!kIsString) {
      if (slot_ != sizeof(T)) throw ValueError("ShareableList: slot size does not match the item type");
    }
    items_ = reinterpret_cast<char*>(shm_->buf().data()) + sizeof(internal::ShareableListHeader);
  }
  size_t Index(long index) const {
    const long n = static_cast<long>(count_);
    const long i = index < 0 ? index + n : index;
    if (i < 0 || i >= n) throw IndexError("ShareableList index out of range");
    return static_cast<size_t>(i);
  }
  T Read(size_t i) const {
    const char* at = items_ + i * slot_;
    if constexpr (kIsString) {
      uint64_t length = 0;
      std::memcpy(&length, at, 8);
      // The length is another process's: never read past the slot.
      return std::string(at + 8, std::min<uint64_t>(length, slot_ - 8));
    } else {
      T value;
      std::memcpy(&value, at, sizeof(T));
      return value;
    }
  }
  void Write(size_t i, const T& value) {
    char* at = items_ + i * slot_;
    if constexpr (kIsString) {
      if (value.size() > slot_ - 8) {
        throw ValueError("ShareableList: a string of " + std::to_string(value.size()) + " bytes exceeds its slot's " +
                         std::to_string(slot_ - 8));
      }
      const uint64_t length = value.size();
      std::memcpy(at + 8, value.data(), value.size());
      std::memcpy(at, &length, 8);
    } else {
      std::memcpy(at, &value, sizeof(T));
    }
  }

  std::shared_ptr<SharedMemory> shm_;
  char* items_ = nullptr;
  size_t count_ = 0;
  size_t slot_ = 0;
};

}  // namespace mp

#endif  // IPC_SHAREABLE_LIST_H_
