// SharedRegion: a nameless shared mapping that forked children inherit and
// any other process can be handed.
//
// Internal to the library. Every cross-process primitive lives in one. The
// memory is a memfd (close-on-exec, its size sealed): it has no name, so
// nothing can be left in /dev/shm, and the kernel frees it when the last
// process that maps it or holds its descriptor lets go.
//
// Thread safety: immutable after creation.
// Fork safety: children forked after creation share the same memory.
// Sharing: forked children inherit it; others get its descriptor through an
//   encoding (SaveRegion/LoadRegion, base/descriptors.h).
#ifndef SYNC_SHARED_REGION_H_
#define SYNC_SHARED_REGION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "base/scoped_fd.h"

namespace mp::internal {

class SharedRegion {
 public:
  // Create maps `bytes` (rounded up to pages) of zeroed shared memory.
  // Throws mp::Error if the mapping fails.
  static std::shared_ptr<SharedRegion> Create(size_t bytes);
  // CreateMemfd is Create (the name says that fd() is valid).
  static std::shared_ptr<SharedRegion> CreateMemfd(size_t bytes);
  // Attach maps the region behind `fd` (taking ownership of it): mp::Error
  // unless it is a size-sealed memfd of at least `min_bytes`, since the
  // descriptor may come from an untrusted process.
  static std::shared_ptr<SharedRegion> Attach(int fd);
  static std::shared_ptr<SharedRegion> Attach(ScopedFd fd);
  static std::shared_ptr<SharedRegion> Attach(ScopedFd fd, size_t min_bytes);

  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // fd is the memfd behind the region (-1 for one made under a file-size
  // limit it exceeds: an anonymous mapping, see Create).
  int fd() const { return fd_.get(); }

 private:
  SharedRegion(void* data, size_t size, ScopedFd fd) : data_(data), size_(size), fd_(std::move(fd)) {}
  void* data_;
  size_t size_;
  ScopedFd fd_;
};

// SaveRegion, in a serialize(): the index of the region's descriptor in the
// message being encoded (mp::ValueError where none can travel, naming `what`).
uint32_t SaveRegion(const std::shared_ptr<SharedRegion>& region, const char* what);
// LoadRegion, in a serialize(): the region sent under `index`, checked to
// hold at least `min_bytes`.
std::shared_ptr<SharedRegion> LoadRegion(uint32_t index, size_t min_bytes, const char* what);

// SharedObject<T>: a T constructed in its own SharedRegion. Copies refer to the
// same object. T must be trivially destructible: no process runs its
// destructor, the last one to let go just unmaps it.
template <class T>
class SharedObject {
  static_assert(std::is_trivially_destructible_v<T>,
                "objects in shared memory must be trivially destructible");

 public:
  template <class... Args>
  static SharedObject Make(size_t extra_bytes, Args&&... args) {
    return MakeIn(SharedRegion::Create(sizeof(T) + extra_bytes), std::forward<Args>(args)...);
  }
  // MakeIn constructs the T at the start of `region`.
  template <class... Args>
  static SharedObject MakeIn(std::shared_ptr<SharedRegion> region, Args&&... args) {
    SharedObject obj;
    obj.region_ = std::move(region);
    obj.object_ = new (obj.region_->data()) T(std::forward<Args>(args)...);
    return obj;
  }
  // Attach uses the T another process constructed in `region`.
  static SharedObject Attach(std::shared_ptr<SharedRegion> region) {
    SharedObject obj;
    obj.region_ = std::move(region);
    obj.object_ = static_cast<T*>(obj.region_->data());
    return obj;
  }
  const std::shared_ptr<SharedRegion>& region() const { return region_; }

  // Save/Load: the object as an index into the message's descriptors (see
  // SaveRegion). Load checks that the region holds a T and `min_tail` bytes.
  template <class Archive>
  void Save(Archive& ar, const char* what) const {
    ar(SaveRegion(region_, what));
  }
  template <class Archive>
  void Load(Archive& ar, const char* what, size_t min_tail = 0) {
    uint32_t index = 0;
    ar(index);
    *this = Attach(LoadRegion(index, sizeof(T) + min_tail, what));
  }

  T* get() const { return object_; }
  T* operator->() const { return object_; }
  T& operator*() const { return *object_; }
  // Bytes after the object, for variable-length tails (arrays, rings).
  std::byte* tail() const { return reinterpret_cast<std::byte*>(object_ + 1); }
  size_t tail_size() const { return region_->size() - sizeof(T); }

 private:
  std::shared_ptr<SharedRegion> region_;
  T* object_ = nullptr;
};

}  // namespace mp::internal

#endif  // SYNC_SHARED_REGION_H_
