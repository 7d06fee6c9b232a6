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

namespace mp::internal {

class SharedRegion {
 public:
  // Create maps `bytes` (rounded up to pages) of zeroed shared memory.
  // Throws mp::Error if the mapping fails.
  static std::shared_ptr<SharedRegion> Create(size_t bytes);

  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  SharedRegion(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
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
    SharedObject obj;
    obj.region_ = SharedRegion::Create(sizeof(T) + extra_bytes);
    obj.object_ = new (obj.region_->data()) T(std::forward<Args>(args)...);
    return obj;
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
