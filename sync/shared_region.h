// SharedRegion: an anonymous shared mapping that forked children inherit.
//
// Internal to the library. Every cross-process primitive lives in one. The
// mapping is MAP_SHARED|MAP_ANONYMOUS: it has no name, so nothing can be left
// in /dev/shm, and the kernel frees it when the last process that maps it
// unmaps it or exits.
//
// Thread safety: immutable after creation.
// Fork safety: children forked after creation share the same memory.
// Sharing: through fork only (start method "fork").
#ifndef SYNC_SHARED_REGION_H_
#define SYNC_SHARED_REGION_H_

#include <cstddef>
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
  // CreateMemfd is Create backed by a memfd, so that a process that is not a
  // fork of this one can map it too (given the descriptor, see fd()).
  static std::shared_ptr<SharedRegion> CreateMemfd(size_t bytes);
  // Attach maps the memfd `fd` (taking ownership of it).
  static std::shared_ptr<SharedRegion> Attach(int fd);
  static std::shared_ptr<SharedRegion> Attach(ScopedFd fd);

  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // fd is the memfd behind the region, or -1 for an anonymous one.
  int fd() const { return fd_.get(); }

 private:
  SharedRegion(void* data, size_t size, ScopedFd fd) : data_(data), size_(size), fd_(std::move(fd)) {}
  void* data_;
  size_t size_;
  ScopedFd fd_;
};

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
