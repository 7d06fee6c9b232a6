// Proxies: the typed handles of a manager's objects (Python's
// multiprocessing.managers proxies: DictProxy, ListProxy, AutoProxy...).
//
//   auto d = manager.dict<std::string, int>({{"a", 1}});
//   d.set("b", 2); d.get("a"); d.setdefault("c", 3); d.popitem();
//   for (const auto& [key, value] : d) ...       // over a snapshot
//   auto l = manager.list<int>({3, 1, 2});
//   l.sort(); l.insert(0, 9); l.get(mp::Slice{1, 3}); l.erase(mp::Slice{0, 1});
//
// A proxy is an object reference: the manager's address and the object's id.
// Copies share one reference; a referent lives while some proxy of it (in
// any process), a name, or a container holding such a proxy refers to it,
// and is freed with the last one, as in Python.
//
// Serializable: a proxy passes to Pool tasks, Process arguments, queue items
// and into other proxies' containers (a proxy stored in a dict keeps its
// referent alive while it is there). The encoding carries no authkey: the
// receiving process uses its own (inherited from the creator, as Python's
// current_process().authkey) or the key it connected to that manager with
// (BaseManager(address, authkey)).
//
// Values are stored by their encoding (ipc/codec.h): keys compare, and
// `index`, `count`, `remove`, set membership match, by encoding, which is
// value equality for the built-in types.
//
// Errors: a missing key is mp::KeyError, an index out of range
// mp::IndexError, an item not in a list mp::ValueError, as in Python; a
// manager that is shut down or dead makes every call throw mp::Error (none
// hangs).
//
// Thread safety: proxies may be used from any thread (each thread has its
// own connection to the manager).
#ifndef MANAGER_PROXY_H_
#define MANAGER_PROXY_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/deadline.h"
#include "base/errors.h"
#include "ipc/codec.h"
#include "manager/internal/client.h"
#include "manager/internal/protocol.h"

namespace mp {

// Python's slice: l[start:stop:step]. Absent bounds are the list's ends;
// negative ones count from the end. mp::ValueError for step 0.
struct Slice {
  std::optional<long> start;
  std::optional<long> stop;
  long step = 1;
};

namespace internal {
// PrintProxy writes Python's repr of a proxy.
inline std::ostream& PrintProxy(std::ostream& os, std::string_view proxy_class, std::string_view type_id,
                                const void* self) {
  return os << '<' << proxy_class << " object, typeid '" << type_id << "' at " << self << '>';
}
}  // namespace internal

namespace proxy {

// The base of every proxy: the shared reference and the calls on it.
class ProxyBase {
 public:
  // A default-constructed proxy refers to nothing: its calls throw
  // mp::ValueError (a placeholder to assign to, or to decode into).
  ProxyBase() = default;
  ProxyBase(internal::ObjectRef ref, uint64_t pin)
      : handle_(std::make_shared<const internal::ObjectHandle>(std::move(ref), pin)) {}

  const internal::ObjectRef& ref() const {
    if (!handle_) throw ValueError("proxy: refers to no object (default-constructed)");
    return handle_->ref();
  }
  // Two proxies are equal when they refer to the same object.
  friend bool operator==(const ProxyBase& a, const ProxyBase& b) {
    if (!a.handle_ || !b.handle_) return a.handle_ == b.handle_;
    return a.ref().id == b.ref().id && a.ref().address == b.ref().address;
  }

  template <class Archive>
  void save(Archive& ar) const {
    const internal::ObjectRef& r = ref();
    uint64_t pin = 0;
    if constexpr (requires { ar.counting_only(); }) {
      if (!ar.counting_only()) pin = internal::PinForTransit(r);
    } else {
      pin = internal::PinForTransit(r);
    }
    ar(r.address, r.id, pin);
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string address;
    uint64_t id = 0;
    uint64_t pin = 0;
    ar(address, id, pin);
    handle_ = internal::Rebuild(std::move(address), id, pin);
  }

 protected:
  // call sends `op` about this proxy's object and returns its result.
  template <class Op>
  typename Op::Result call(Op op) const {
    const internal::ObjectRef& r = ref();
    op.id = r.id;
    return internal::Call(r.address, r.authkey, std::move(op));
  }
  template <class Op>
  void call_oneway(Op op) const {
    const internal::ObjectRef& r = ref();
    op.id = r.id;
    internal::CallOneWay(r.address, r.authkey, std::move(op));
  }
  // A proxy of another object of the same manager (a value's lock).
  internal::ObjectRef sibling(uint64_t id) const {
    internal::ObjectRef r = ref();
    r.id = id;
    return r;
  }

  std::shared_ptr<const internal::ObjectHandle> handle_;
};

// Iteration over a snapshot: begin() takes one (one round trip), the loop
// runs on it.
template <class T>
class SnapshotIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  struct Sentinel {};
  SnapshotIterator() = default;
  explicit SnapshotIterator(std::shared_ptr<const std::vector<T>> items) : items_(std::move(items)) {}
  const T& operator*() const { return (*items_)[at_]; }
  const T* operator->() const { return &(*items_)[at_]; }
  SnapshotIterator& operator++() {
    ++at_;
    return *this;
  }
  SnapshotIterator operator++(int) {
    SnapshotIterator old = *this;
    ++at_;
    return old;
  }
  friend bool operator==(const SnapshotIterator& it, Sentinel) { return it.at_ >= it.items_->size(); }

 private:
  std::shared_ptr<const std::vector<T>> items_;
  size_t at_ = 0;
};

class Lock;

// A manager queue. Python: Manager().Queue(maxsize). The API of mp::Queue.
// A local manager hands its queues to each client process as shared memory,
// so puts and gets make no round trip; over TCP a put on an unbounded queue
// is one-way (pipelined).
template <class T>
class Queue : public ProxyBase {
 public:
  // Python's repr: <AutoProxy[Queue] object, typeid 'Queue' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Queue& p) {
    return internal::PrintProxy(os, "AutoProxy[Queue]", "Queue", &p);
  }
  Queue() = default;
  Queue(internal::ObjectRef ref, uint64_t pin, long maxsize) : ProxyBase(std::move(ref), pin), maxsize_(maxsize) {}

  void put(const T& item) { put_until(item, std::nullopt); }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    put_until(item, internal::DeadlineAfter(timeout));
  }
  void put(const T& item, bool block) { put_until(item, block ? internal::Deadline() : internal::Clock::now()); }
  void put_nowait(const T& item) { put_until(item, internal::Clock::now()); }
  T get() { return get_until(std::nullopt); }
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_until(internal::DeadlineAfter(timeout));
  }
  T get(bool block) { return block ? get() : get_nowait(); }
  T get_nowait() { return get_until(internal::Clock::now()); }
  long qsize() const {
    if (auto* lq = local()) return internal::LocalSize(*lq);
    return static_cast<long>(call(internal::wire::QueueSize{}));
  }
  bool empty() const { return qsize() == 0; }
  bool full() const { return maxsize_ > 0 && qsize() >= maxsize_; }
  long maxsize() const { return maxsize_; }

  template <class Archive>
  void save(Archive& ar) const {
    ProxyBase::save(ar);
    ar(maxsize_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ProxyBase::load(ar);
    ar(maxsize_);
  }

 protected:
  void put_until(const T& item, const internal::Deadline& deadline) {
    if (auto* lq = local()) return internal::LocalPut(*lq, encode(item), deadline);
    internal::wire::QueuePut op{{}, encode(item), internal::WaitFor(deadline)};
    if (!deadline && maxsize_ <= 0) return call_oneway(std::move(op));
    call(std::move(op));
  }
  T get_until(const internal::Deadline& deadline) {
    if (auto* lq = local()) return decode<T>(internal::LocalGet(*lq, deadline));
    return decode<T>(call(internal::wire::QueueGet{{}, internal::WaitFor(deadline)}));
  }
  internal::LocalQueue* local() const {
    ref();  // (refers to nothing: mp::ValueError)
    return handle_->local_queue();
  }
  long maxsize_ = 0;
};

// Python: Manager().JoinableQueue(maxsize): a Queue with task_done and join.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  // Python's repr: <AutoProxy[JoinableQueue] object, typeid 'JoinableQueue' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const JoinableQueue& p) {
    return internal::PrintProxy(os, "AutoProxy[JoinableQueue]", "JoinableQueue", &p);
  }
  using Queue<T>::Queue;
  // task_done: one item taken is processed. mp::ValueError if called more
  // times than items were put.
  void task_done() {
    if (auto* lq = this->local()) return internal::LocalTaskDone(*lq);
    this->call(internal::wire::QueueTaskDone{});
  }
  // join blocks until every item put has been task_done.
  void join() { join_until(std::nullopt); }
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(internal::DeadlineAfter(timeout));
  }

 private:
  bool join_until(const internal::Deadline& deadline) {
    if (auto* lq = this->local()) return internal::LocalJoin(*lq, deadline);
    return this->call(internal::wire::QueueJoin{{}, internal::WaitFor(deadline)});
  }
};

// A manager dict. Python: Manager().dict(). Insertion-ordered, as Python's.
template <class K, class V>
class Dict : public ProxyBase {
 public:
  // Python's repr: <DictProxy object, typeid 'dict' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Dict& p) {
    return internal::PrintProxy(os, "DictProxy", "dict", &p);
  }
  using ProxyBase::ProxyBase;
  using Item = std::pair<K, V>;
  using iterator = SnapshotIterator<Item>;

  // d[key] = value.
  void set(const K& key, const V& value) { call(internal::wire::DictSet{{}, encode(key), internal::Store(value)}); }
  // d[key]: mp::KeyError if the key is missing.
  V get(const K& key) const { return decode<V>(call(internal::wire::DictGet{{}, encode(key), std::nullopt})); }
  // d.get(key, fallback).
  V get(const K& key, const V& fallback) const {
    return decode<V>(call(internal::wire::DictGet{{}, encode(key), encode(fallback)}));
  }
  bool contains(const K& key) const { return call(internal::wire::DictContains{{}, encode(key)}); }
  // pop: mp::KeyError if the key is missing (and no fallback is given).
  V pop(const K& key) { return decode<V>(call(internal::wire::DictPop{{}, encode(key), std::nullopt})); }
  V pop(const K& key, const V& fallback) {
    return decode<V>(call(internal::wire::DictPop{{}, encode(key), encode(fallback)}));
  }
  // setdefault: d[key] if present, else sets it to `value` and returns it.
  V setdefault(const K& key, const V& value = V{}) {
    return decode<V>(call(internal::wire::DictSetDefault{{}, encode(key), internal::Store(value)}));
  }
  // popitem removes and returns the last item inserted; mp::KeyError when
  // the dict is empty.
  Item popitem() {
    auto [key, value] = call(internal::wire::DictPopItem{});
    return Item(decode<K>(key), decode<V>(value));
  }
  // erase: del d[key]; mp::KeyError if the key is missing.
  void erase(const K& key) { call(internal::wire::DictErase{{}, encode(key)}); }
  size_t size() const { return static_cast<size_t>(call(internal::wire::DictSize{})); }
  bool empty() const { return size() == 0; }
  // keys, values, items: snapshots, in insertion order (one round trip).
  std::vector<K> keys() const {
    std::vector<K> out;
    for (auto& [k, v] : call(internal::wire::DictItems{})) out.push_back(decode<K>(k));
    return out;
  }
  std::vector<V> values() const {
    std::vector<V> out;
    for (auto& [k, v] : call(internal::wire::DictItems{})) out.push_back(decode<V>(v));
    return out;
  }
  std::vector<Item> items() const {
    std::vector<Item> out;
    for (auto& [k, v] : call(internal::wire::DictItems{})) out.emplace_back(decode<K>(k), decode<V>(v));
    return out;
  }
  // update sets every (key, value) of `entries` (a map, or a range of pairs).
  template <std::ranges::range Range>
  void update(const Range& entries) {
    internal::wire::StoredItems stored;
    for (const auto& [k, v] : entries) stored.emplace_back(encode(K(k)), internal::Store(V(v)));
    call(internal::wire::DictUpdate{{}, std::move(stored)});
  }
  void update(std::initializer_list<Item> entries) { update<std::initializer_list<Item>>(entries); }
  void clear() { call(internal::wire::DictClear{}); }
  // copy: the whole dict, as a std::map (Python's d.copy(); items() keeps
  // the insertion order).
  std::map<K, V> copy() const {
    std::map<K, V> out;
    for (auto& item : items()) out.insert(std::move(item));
    return out;
  }
  std::map<K, V> to_map() const { return copy(); }
  // for (const auto& [key, value] : d): over a snapshot of the items.
  iterator begin() const { return iterator(std::make_shared<const std::vector<Item>>(items())); }
  typename iterator::Sentinel end() const { return {}; }
};

// A manager list. Python: Manager().list(). Negative indices count from the
// end; an index out of range is mp::IndexError.
template <class T>
class List : public ProxyBase {
 public:
  // Python's repr: <ListProxy object, typeid 'list' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const List& p) {
    return internal::PrintProxy(os, "ListProxy", "list", &p);
  }
  using ProxyBase::ProxyBase;
  using iterator = SnapshotIterator<T>;

  void append(const T& item) { call(internal::wire::ListAppend{{}, internal::Store(item)}); }
  template <std::ranges::range Range = std::vector<T>>
  void extend(const Range& items) {
    call(internal::wire::ListExtend{{}, StoreAll(items)});
  }
  void extend(std::initializer_list<T> items) { extend<std::initializer_list<T>>(items); }
  // insert before `index` (clamped to the list, as Python's).
  void insert(long index, const T& item) { call(internal::wire::ListInsert{{}, index, internal::Store(item)}); }
  T get(long index) const { return decode<T>(call(internal::wire::ListGet{{}, index})); }
  // l[start:stop:step]
  std::vector<T> get(const Slice& slice) const { return DecodeAll(call(internal::wire::ListGetSlice{{}, Wire(slice)})); }
  void set(long index, const T& item) { call(internal::wire::ListSet{{}, index, internal::Store(item)}); }
  // l[start:stop:step] = items: with step 1 any number of items replaces
  // the slice; otherwise exactly as many as it has (mp::ValueError).
  template <std::ranges::range Range = std::vector<T>>
  void set(const Slice& slice, const Range& items) {
    call(internal::wire::ListSetSlice{{}, Wire(slice), StoreAll(items), false});
  }
  // erase: del l[index], del l[start:stop:step].
  void erase(long index) { pop(index); }
  void erase(const Slice& slice) { call(internal::wire::ListSetSlice{{}, Wire(slice), {}, true}); }
  T pop(long index = -1) { return decode<T>(call(internal::wire::ListPop{{}, index})); }
  // remove the first item equal to `item`; mp::ValueError if there is none.
  void remove(const T& item) { call(internal::wire::ListRemove{{}, encode(item)}); }
  // index of the first item equal to `item` in [start, stop); mp::ValueError
  // if there is none.
  size_t index(const T& item, long start = 0, std::optional<long> stop = std::nullopt) const {
    return static_cast<size_t>(call(internal::wire::ListIndex{{}, encode(item), start, stop}));
  }
  size_t count(const T& item) const { return static_cast<size_t>(call(internal::wire::ListCount{{}, encode(item)})); }
  // sort, stable, by `less` on the decoded items. The server applies the
  // order only if the list did not change meanwhile (else sort starts over),
  // so a sort never loses a concurrent append.
  template <class Compare = std::less<>>
  void sort(Compare less = {}) {
    for (int attempt = 0; attempt < kSortAttempts; ++attempt) {
      internal::wire::ListSnapshot snapshot = call(internal::wire::ListAll{});
      std::vector<T> items = DecodeAll(snapshot.items);
      std::vector<uint32_t> order(items.size());
      std::iota(order.begin(), order.end(), 0u);
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return less(items[a], items[b]); });
      if (call(internal::wire::ListPermute{{}, snapshot.version, std::move(order)})) return;
    }
    throw Error("list.sort: the list kept changing while it was sorted");
  }
  void reverse() { call(internal::wire::ListReverse{}); }
  void clear() { call(internal::wire::ListClear{}); }
  size_t size() const { return static_cast<size_t>(call(internal::wire::ListSize{})); }
  bool empty() const { return size() == 0; }
  std::vector<T> to_vector() const { return DecodeAll(call(internal::wire::ListAll{}).items); }
  // for (const auto& item : l): over a snapshot.
  iterator begin() const { return iterator(std::make_shared<const std::vector<T>>(to_vector())); }
  typename iterator::Sentinel end() const { return {}; }

 protected:
  static constexpr int kSortAttempts = 100;
  static internal::wire::Slice Wire(const Slice& s) {
    return internal::wire::Slice{s.start ? std::optional<int64_t>(*s.start) : std::nullopt,
                                 s.stop ? std::optional<int64_t>(*s.stop) : std::nullopt, s.step};
  }
  template <class Range>
  static std::vector<internal::wire::Stored> StoreAll(const Range& items) {
    std::vector<internal::wire::Stored> stored;
    for (const auto& item : items) stored.push_back(internal::Store(T(item)));
    return stored;
  }
  static std::vector<T> DecodeAll(const std::vector<std::string>& encoded) {
    std::vector<T> out;
    out.reserve(encoded.size());
    for (const auto& bytes : encoded) out.push_back(decode<T>(bytes));
    return out;
  }
};

// A manager array: a list of fixed length. Python: Manager().Array(typecode,
// sequence). Only get, set (of single items and of slices of the same
// length), size and to_vector: anything else that would change the length
// is mp::ValueError from the server.
template <class T>
class Array : private List<T> {
 public:
  // Python's repr: <ArrayProxy object, typeid 'Array' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Array& p) {
    return internal::PrintProxy(os, "ArrayProxy", "Array", &p);
  }
  Array() = default;
  Array(internal::ObjectRef ref, uint64_t pin) : List<T>(std::move(ref), pin) {}
  using List<T>::get;
  using List<T>::set;
  using List<T>::size;
  using List<T>::to_vector;
  using List<T>::count;
  using List<T>::index;
  using List<T>::begin;
  using List<T>::end;
  using List<T>::ref;
  using ProxyBase::save;
  using ProxyBase::load;
  friend bool operator==(const Array& a, const Array& b) {
    return static_cast<const ProxyBase&>(a) == static_cast<const ProxyBase&>(b);
  }
};

// A manager set. Unordered, by encoding.
template <class T>
class Set : public ProxyBase {
 public:
  // Python's repr: <SetProxy object, typeid 'set' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Set& p) {
    return internal::PrintProxy(os, "SetProxy", "set", &p);
  }
  using ProxyBase::ProxyBase;
  void add(const T& item) { call(internal::wire::SetAdd{{}, encode(item)}); }
  // remove: mp::KeyError if `item` is not in the set; discard: no error.
  void remove(const T& item) { call(internal::wire::SetRemove{{}, encode(item), false}); }
  void discard(const T& item) { call(internal::wire::SetRemove{{}, encode(item), true}); }
  bool contains(const T& item) const { return call(internal::wire::SetContains{{}, encode(item)}); }
  // pop: any item; mp::KeyError when the set is empty.
  T pop() { return decode<T>(call(internal::wire::SetPop{})); }
  size_t size() const { return static_cast<size_t>(call(internal::wire::SetSize{})); }
  bool empty() const { return size() == 0; }
  std::vector<T> items() const {
    std::vector<T> out;
    for (const auto& bytes : call(internal::wire::SetItems{})) out.push_back(decode<T>(bytes));
    return out;
  }
  void clear() { call(internal::wire::SetClear{}); }
};

// Lock and RLock proxies. Python: Manager().Lock(), RLock(). Lockable. The
// owner is the calling thread of this process (its connection): a lock it
// holds is released if it goes away.
class Lock : public ProxyBase {
 public:
  // Python's repr: <AcquirerProxy object, typeid 'Lock' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Lock& p) {
    return internal::PrintProxy(os, "AcquirerProxy", "Lock", &p);
  }
  using ProxyBase::ProxyBase;
  void acquire() { call(internal::wire::LockAcquire{{}, {true, -1}}); }
  bool acquire(bool block) { return call(internal::wire::LockAcquire{{}, {block, -1}}); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return call(internal::wire::LockAcquire{{}, internal::WaitFor(timeout)});
  }
  // release: mp::ValueError if the caller does not hold it.
  void release() { call(internal::wire::LockRelease{}); }
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
};
using RLock = Lock;

// Semaphore and BoundedSemaphore proxies (a bounded one's release above its
// initial value is mp::ValueError).
class Semaphore : public ProxyBase {
 public:
  // Python's repr: <AcquirerProxy object, typeid 'Semaphore' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Semaphore& p) {
    return internal::PrintProxy(os, "AcquirerProxy", "Semaphore", &p);
  }
  using ProxyBase::ProxyBase;
  void acquire() { call(internal::wire::SemAcquire{{}, {true, -1}}); }
  bool acquire(bool block) { return call(internal::wire::SemAcquire{{}, {block, -1}}); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return call(internal::wire::SemAcquire{{}, internal::WaitFor(timeout)});
  }
  void release() { call(internal::wire::SemRelease{}); }
  int get_value() const { return static_cast<int>(call(internal::wire::SemValue{})); }
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
};
using BoundedSemaphore = Semaphore;

class Event : public ProxyBase {
 public:
  // Python's repr: <EventProxy object, typeid 'Event' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Event& p) {
    return internal::PrintProxy(os, "EventProxy", "Event", &p);
  }
  using ProxyBase::ProxyBase;
  void set() { call(internal::wire::EventSet{}); }
  void clear() { call(internal::wire::EventClear{}); }
  bool is_set() const { return call(internal::wire::EventIsSet{}); }
  bool wait() { return call(internal::wire::EventWait{{}, {true, -1}}); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return call(internal::wire::EventWait{{}, internal::WaitFor(timeout)});
  }
};

// Python: Manager().Condition(lock). Lockable (its lock).
class Condition : public ProxyBase {
 public:
  // Python's repr: <ConditionProxy object, typeid 'Condition' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Condition& p) {
    return internal::PrintProxy(os, "ConditionProxy", "Condition", &p);
  }
  Condition() = default;
  Condition(internal::ObjectRef ref, uint64_t pin) : ProxyBase(std::move(ref), pin) { FetchLock(); }

  // get_lock is the condition's lock (held around wait and notify).
  Lock get_lock() const { return the_lock(); }
  void acquire() { the_lock().acquire(); }
  bool acquire(bool block) { return the_lock().acquire(block); }
  void release() { the_lock().release(); }
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
  // wait releases the lock until notified, then takes it again.
  void wait() { call(internal::wire::CondWait{{}, {true, -1}}); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return call(internal::wire::CondWait{{}, internal::WaitFor(timeout)});
  }
  // wait_for waits until predicate() is true (checked with the lock held);
  // returns its last value. Python: wait_for(predicate, timeout).
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    while (!predicate()) wait();
    return true;
  }
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    const internal::Deadline deadline = internal::DeadlineAfter(timeout);
    bool result = predicate();
    while (!result) {
      const auto left = *deadline - internal::Clock::now();
      if (left <= left.zero()) break;
      wait(left);
      result = predicate();
    }
    return result;
  }
  void notify(int n = 1) { call(internal::wire::CondNotify{{}, n}); }
  void notify_all() { call(internal::wire::CondNotify{{}, -1}); }

  template <class Archive>
  void load(Archive& ar) {
    ProxyBase::load(ar);
    FetchLock();
  }
  using ProxyBase::save;

 private:
  Lock& the_lock() const {
    if (!lock_) throw ValueError("proxy: refers to no object (default-constructed)");
    return *lock_;
  }
  void FetchLock() {
    internal::wire::PinnedId lock = call(internal::wire::CondLock{});
    lock_ = std::make_shared<Lock>(sibling(lock.id), lock.pin);
  }
  std::shared_ptr<Lock> lock_;
};

class Barrier : public ProxyBase {
 public:
  // Python's repr: <BarrierProxy object, typeid 'Barrier' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Barrier& p) {
    return internal::PrintProxy(os, "BarrierProxy", "Barrier", &p);
  }
  using ProxyBase::ProxyBase;
  // wait: the arrival index (0 .. parties-1); mp::BrokenBarrierError if the
  // barrier is or becomes broken (abort, a timeout, a reset).
  int wait() { return static_cast<int>(call(internal::wire::BarrierWait{{}, {true, -1}})); }
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return static_cast<int>(call(internal::wire::BarrierWait{{}, internal::WaitFor(timeout)}));
  }
  void abort() { call(internal::wire::BarrierAbort{}); }
  void reset() { call(internal::wire::BarrierReset{}); }
  bool broken() const { return call(internal::wire::BarrierQuery{}).broken; }
  int parties() const { return static_cast<int>(call(internal::wire::BarrierQuery{}).parties); }
  int n_waiting() const { return static_cast<int>(call(internal::wire::BarrierQuery{}).waiting); }
};

// A manager value. Python: Manager().Value(typecode, value).
template <class T>
class Value : public ProxyBase {
 public:
  // Python's repr: <ValueProxy object, typeid 'Value' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Value& p) {
    return internal::PrintProxy(os, "ValueProxy", "Value", &p);
  }
  using ProxyBase::ProxyBase;
  T value() const { return decode<T>(call(internal::wire::ValueGet{})); }
  void set_value(const T& v) { call(internal::wire::ValueSet{{}, internal::Store(v)}); }
  // get_lock: an RLock for compound updates (value() and set_value() are
  // each atomic on their own).
  Lock get_lock() const {
    internal::wire::PinnedId lock = call(internal::wire::ValueLock{});
    return Lock(sibling(lock.id), lock.pin);
  }
};

// A namespace: named attributes of any serializable type.
// Python: Manager().Namespace(); ns.x = 1 is ns.set("x", 1).
class Namespace : public ProxyBase {
 public:
  // Python's repr: <NamespaceProxy object, typeid 'Namespace' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Namespace& p) {
    return internal::PrintProxy(os, "NamespaceProxy", "Namespace", &p);
  }
  using ProxyBase::ProxyBase;
  template <class T>
  void set(const std::string& name, const T& value) {
    call(internal::wire::NamespaceSet{{}, name, internal::Store(value)});
  }
  // get: mp::KeyError for an attribute never set (Python: AttributeError).
  template <class T>
  T get(const std::string& name) const {
    return decode<T>(call(internal::wire::NamespaceGet{{}, name}));
  }
  bool contains(const std::string& name) const {
    const std::vector<std::string> all = names();
    return std::find(all.begin(), all.end(), name) != all.end();
  }
  // erase: del ns.name; mp::KeyError if it was never set.
  void erase(const std::string& name) { call(internal::wire::NamespaceErase{{}, name}); }
  // names: the attributes, in the order they were first set (Python:
  // vars(ns)).
  std::vector<std::string> names() const { return call(internal::wire::NamespaceNames{}); }
};

}  // namespace proxy
}  // namespace mp

#endif  // MANAGER_PROXY_H_
