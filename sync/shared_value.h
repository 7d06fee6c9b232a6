// Shared values: Python's multiprocessing.Value, Array, RawValue, RawArray.
//
// A T (or n of them) in nameless shared memory, visible to every child it is
// passed to (as a Process argument, any start method, or a Pool task's). Value and Array come with a lock, an RLock as in
// Python, so `std::lock_guard g(v.get_lock()); v.set_value(v.value() + 1);` is
// Python's `with v.get_lock(): v.value += 1`. Value's value()/set_value() take
// that lock themselves, as Python's property does. Array's element access does
// not (it returns references); hold get_lock() around compound updates.
//
//   mp::Value<int> counter(0);
//   mp::Array<double> xs{1.0, 2.0, 3.0};
//
// Thread safety: value()/set_value() are atomic with respect to each other;
//   everything else needs get_lock() (or is Raw and needs the caller's care).
// Fork safety: children forked later share the memory.
// Sharing: inherited by forked children; passable as a Process or Pool task
//   argument under any start method and over a Connection (the receiver
//   uses the same memory). Not inside a Queue item or manager value.
#ifndef SYNC_SHARED_VALUE_H_
#define SYNC_SHARED_VALUE_H_

#include <cstddef>
#include <initializer_list>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "base/errors.h"
#include "sync/shared_region.h"
#include "sync/synchronize.h"

namespace mp {

// RawValue<T>: a T in shared memory, no lock. Python: RawValue.
template <class T>
class RawValue {
  static_assert(std::is_trivially_copyable_v<T>, "shared values must be trivially copyable");

 public:
  explicit RawValue(T init = T{}) : object_(internal::SharedObject<Holder>::Make(0, Holder{init})) {}
  T value() const { return object_->value; }
  void set_value(T v) { object_->value = v; }
  T& operator*() const { return object_->value; }
  T* get() const { return &object_->value; }

  template <class Archive>
  void save(Archive& ar) const { object_.Save(ar, "RawValue"); }
  template <class Archive>
  void load(Archive& ar) { object_.Load(ar, "RawValue"); }

 private:
  struct Holder {
    T value;
  };
  internal::SharedObject<Holder> object_;
};

// Value<T>: a RawValue guarded by an RLock. Python: multiprocessing.Value.
template <class T>
class Value {
 public:
  explicit Value(T init = T{}) : raw_(init) {}
  // value reads under the lock.
  T value() const {
    std::lock_guard<RLock> guard(lock_);
    return raw_.value();
  }
  // set_value writes under the lock.
  void set_value(T v) {
    std::lock_guard<RLock> guard(lock_);
    raw_.set_value(v);
  }
  // get_lock is the lock that guards the value (shared by all copies).
  RLock& get_lock() const { return lock_; }
  // get_obj is the raw value, for access with the lock already held.
  const RawValue<T>& get_obj() const { return raw_; }

  template <class Archive>
  void save(Archive& ar) const { ar(raw_, lock_); }
  template <class Archive>
  void load(Archive& ar) { ar(raw_, lock_); }

 private:
  RawValue<T> raw_;
  mutable RLock lock_;
};

// RawArray<T>: n Ts in shared memory, no lock. Python: RawArray.
template <class T>
class RawArray {
  static_assert(std::is_trivially_copyable_v<T>, "shared arrays must be trivially copyable");

 public:
  // RawArray() is empty (a placeholder to decode into).
  RawArray() : RawArray(size_t{0}) {}
  // RawArray(n) holds n value-initialized elements.
  explicit RawArray(size_t n)
      : object_(internal::SharedObject<Header>::Make(n * sizeof(T))), size_(n) {
    object_->size = n;
    // A fresh region is zero-filled by the kernel, which is T{} for numbers:
    // their pages are then touched only when used (a pool's task gates
    // are megabytes, mostly never used).
    if constexpr (!std::is_arithmetic_v<T>) {
      for (size_t i = 0; i < n; ++i) new (data() + i) T{};
    }
  }
  RawArray(std::initializer_list<T> values) : RawArray(values.begin(), values.end()) {}
  explicit RawArray(const std::vector<T>& values) : RawArray(values.begin(), values.end()) {}

  size_t size() const { return size_; }
  T* data() const { return reinterpret_cast<T*>(object_.tail()); }
  T& operator[](size_t i) const { return data()[i]; }
  // at is bounds-checked: mp::ValueError past the end (Python: IndexError).
  T& at(size_t i) const {
    if (i >= size()) {
      throw ValueError("Array index " + std::to_string(i) + " out of range (size " +
                       std::to_string(size()) + ")");
    }
    return data()[i];
  }
  T* begin() const { return data(); }
  T* end() const { return data() + size(); }
  std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

  template <class Archive>
  void save(Archive& ar) const { object_.Save(ar, "RawArray"); }
  template <class Archive>
  void load(Archive& ar) {
    object_.Load(ar, "RawArray");
    // The length is read once, and must fit the region: the memory (and the
    // process that sent it) is not to be trusted with our bounds.
    const size_t n = object_->size;
    if (n > object_.tail_size() / sizeof(T)) {
      throw Error("RawArray: the region received is too small for its length");
    }
    size_ = n;
  }

 private:
  struct Header {
    alignas(std::max_align_t) size_t size = 0;
  };
  template <class It>
  RawArray(It first, It last) : RawArray(static_cast<size_t>(std::distance(first, last))) {
    std::copy(first, last, data());
  }
  internal::SharedObject<Header> object_;
  size_t size_;  // this process's copy: see load()
};

// Array<T>: a RawArray with an RLock. Python: multiprocessing.Array.
template <class T>
class Array : public RawArray<T> {
 public:
  using RawArray<T>::RawArray;
  Array() : RawArray<T>(size_t{0}) {}
  Array(std::initializer_list<T> values) : RawArray<T>(values) {}
  RLock& get_lock() const { return lock_; }

  template <class Archive>
  void save(Archive& ar) const {
    RawArray<T>::save(ar);
    ar(lock_);
  }
  template <class Archive>
  void load(Archive& ar) {
    RawArray<T>::load(ar);
    ar(lock_);
  }

 private:
  mutable RLock lock_;
};

}  // namespace mp

#endif  // SYNC_SHARED_VALUE_H_
