// Managers: Python's multiprocessing.Manager and BaseManager — a server
// process that owns shared objects, and typed proxies that reach them from
// any process.
//
//   mp::Manager manager;                              // starts the server
//   auto q = manager.Queue<std::string>();            // proxy
//   pool.apply_async(writer, q);                      // proxies are serializable
//   auto d = manager.dict<std::string, int>();
//   d.set("k", 1); d.get("k"); d.get("k", 0);         // missing key: mp::KeyError
//
// Unlike mp::Queue, a proxy can be handed to processes that already exist
// (pool workers) and to other machines: it is just the server's address, its
// authkey and an object id, and it connects on first use (one connection per
// process and thread). Every call is one round trip at most: a local
// manager's queues are handed to each client process as shared memory (a
// memfd over the Unix socket), so puts and gets make no round trip at all;
// over TCP, Queue.put on an unbounded queue is one-way (pipelined).
//
// The server serves each client on a thread of its own, so a blocking call
// (get on an empty queue, acquire of a held lock) holds no other client up.
// A client that dies mid-call does not disturb the server; locks it held
// through a proxy are released. If the server dies, calls throw mp::Error;
// they never hang on a dead server.
//
// Local managers (Manager()) listen on a Unix socket with a random authkey;
// the socket file is removed by shutdown() or the destructor. A Manager
// serving on "host:port" (ManagerOptions.address) is reachable from other
// machines with its authkey (BaseManager(address, authkey)); a wrong key is
// refused before any object is touched. Objects may be named, so that remote
// clients find them: manager.Queue<int>("tasks") creates or returns the one
// queue of that name.
//
// Objects live until the manager shuts down (no reference counting).
//
// Thread safety: proxies and managers may be used from any thread.
// Fork safety: a forked child opens its own connections on first use.
// Sharing: proxies are copyable and serializable (Pool task and Process
//   arguments, queue items); a Manager is not.
#ifndef MANAGER_MANAGER_H_
#define MANAGER_MANAGER_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "ipc/codec.h"
#include "ipc/connection.h"
#include "manager/manager_protocol.h"
#include "process/process.h"
#include "sync/futex.h"

namespace mp {

namespace internal {

// Where an object lives.
struct ObjectRef {
  std::string address;
  std::string authkey;
  uint64_t id = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(address, authkey, id);
  }
};

// Call sends a request on this thread's connection to the manager and
// returns the reply's payload; a failure reply becomes the matching mp::
// exception. One-way requests return at once.
std::string Call(const std::string& address, const std::string& authkey, Request request);

// A local manager's queue, mapped into this process: puts and gets never
// leave shared memory. Every call first checks that the server still runs,
// so a dead manager gives errors here as it does over the socket.
struct LocalQueue;
// LocalQueueFor attaches to the queue `ref` (once per process); nullptr when
// the manager is remote (TCP) or cannot hand the queue over.
std::shared_ptr<LocalQueue> LocalQueueFor(const ObjectRef& ref);
void LocalPut(LocalQueue& q, std::string_view bytes, const Deadline& deadline);  // mp::Full
std::string LocalGet(LocalQueue& q, const Deadline& deadline);                   // mp::Empty
long LocalSize(LocalQueue& q);
long LocalMaxsize(LocalQueue& q);
void LocalTaskDone(LocalQueue& q);
bool LocalJoin(LocalQueue& q, const Deadline& deadline);

inline double Seconds(std::optional<std::chrono::duration<double>> timeout) {
  return timeout ? std::max(0.0, timeout->count()) : -1.0;
}

// The base of every proxy: an object reference and calls on it.
class ProxyBase {
 public:
  ProxyBase() = default;
  explicit ProxyBase(ObjectRef ref) : ref_(std::move(ref)) {}
  template <class Archive>
  void serialize(Archive& ar) {
    ar(ref_);
  }
  const ObjectRef& ref() const { return ref_; }

 protected:
  std::string call(Op op, std::string a = {}, std::string b = {}, int64_t n = 0,
                   double timeout = -1, bool oneway = false) const {
    Request r;
    r.object = ref_.id;
    r.op = op;
    r.a = std::move(a);
    r.b = std::move(b);
    r.n = n;
    r.timeout = timeout;
    r.oneway = oneway;
    return Call(ref_.address, ref_.authkey, std::move(r));
  }
  template <class T>
  T call_as(Op op, std::string a = {}, std::string b = {}, int64_t n = 0, double timeout = -1) const {
    return decode<T>(call(op, std::move(a), std::move(b), n, timeout));
  }
  ObjectRef ref_;
};

}  // namespace internal

namespace proxy {

// A manager queue. Python: Manager().Queue(). Same API as mp::Queue.
template <class T>
class Queue : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  Queue(internal::ObjectRef ref, long maxsize) : ProxyBase(std::move(ref)), maxsize_(maxsize) {}

  void put(const T& item) { put_until(item, std::nullopt); }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    put_until(item, internal::DeadlineAfter(timeout));
  }
  void put_nowait(const T& item) { put_until(item, internal::Clock::now()); }
  T get() { return get_until(std::nullopt); }
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_until(internal::DeadlineAfter(timeout));
  }
  T get(bool block) { return block ? get() : get_nowait(); }
  T get_nowait() { return get_until(internal::Clock::now()); }
  long qsize() const {
    if (auto local = internal::LocalQueueFor(ref_)) return internal::LocalSize(*local);
    return static_cast<long>(call_as<int64_t>(internal::Op::kQueueSize));
  }
  bool empty() const { return qsize() == 0; }
  bool full() const {
    if (auto local = internal::LocalQueueFor(ref_)) {
      const long max = internal::LocalMaxsize(*local);
      return max > 0 && internal::LocalSize(*local) >= max;
    }
    return call_as<bool>(internal::Op::kQueueFull);
  }
  // JoinableQueue: task_done() and join().
  void task_done() {
    if (auto local = internal::LocalQueueFor(ref_)) return internal::LocalTaskDone(*local);
    call(internal::Op::kQueueTaskDone);
  }
  void join() {
    if (auto local = internal::LocalQueueFor(ref_)) {
      internal::LocalJoin(*local, std::nullopt);
      return;
    }
    call(internal::Op::kQueueJoin);
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(ref_, maxsize_);
  }

 private:
  void put_until(const T& item, const internal::Deadline& deadline) {
    if (auto local = internal::LocalQueueFor(ref_)) return internal::LocalPut(*local, encode(item), deadline);
    const bool nowait = deadline && *deadline <= internal::Clock::now();
    const double timeout =
        deadline ? std::chrono::duration<double>(*deadline - internal::Clock::now()).count() : -1;
    call(internal::Op::kQueuePut, encode(item), {}, nowait ? 0 : 1, nowait ? -1 : timeout,
         !deadline && maxsize_ <= 0);
  }
  T get_until(const internal::Deadline& deadline) {
    if (auto local = internal::LocalQueueFor(ref_)) return decode<T>(internal::LocalGet(*local, deadline));
    const bool nowait = deadline && *deadline <= internal::Clock::now();
    const double timeout =
        deadline ? std::max(0.0, std::chrono::duration<double>(*deadline - internal::Clock::now()).count()) : -1;
    return decode<T>(call(internal::Op::kQueueGet, {}, {}, nowait ? 0 : 1, nowait ? -1 : timeout));
  }
  long maxsize_ = 0;
};

// A manager dict. Python: Manager().dict(). Insertion-ordered, as Python.
template <class K, class V>
class Dict : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  void set(const K& key, const V& value) { call(internal::Op::kDictSet, encode(key), encode(value)); }
  // get: mp::KeyError if the key is missing.
  V get(const K& key) const { return call_as<V>(internal::Op::kDictGet, encode(key)); }
  V get(const K& key, const V& fallback) const {
    return call_as<V>(internal::Op::kDictGet, encode(key), encode(fallback), 1);
  }
  bool contains(const K& key) const { return call_as<bool>(internal::Op::kDictContains, encode(key)); }
  V pop(const K& key) { return call_as<V>(internal::Op::kDictPop, encode(key)); }
  V pop(const K& key, const V& fallback) {
    return call_as<V>(internal::Op::kDictPop, encode(key), encode(fallback), 1);
  }
  size_t size() const { return static_cast<size_t>(call_as<int64_t>(internal::Op::kDictSize)); }
  std::vector<K> keys() const { return DecodeAll<K>(internal::Op::kDictKeys); }
  std::vector<V> values() const { return DecodeAll<V>(internal::Op::kDictValues); }
  std::vector<std::pair<K, V>> items() const {
    std::vector<std::pair<K, V>> out;
    for (auto& [k, v] : call_as<std::vector<std::pair<std::string, std::string>>>(internal::Op::kDictItems)) {
      out.emplace_back(decode<K>(k), decode<V>(v));
    }
    return out;
  }
  template <class Map>
  void update(const Map& entries) {
    std::vector<std::pair<std::string, std::string>> encoded;
    for (const auto& [k, v] : entries) encoded.emplace_back(encode(K(k)), encode(V(v)));
    call(internal::Op::kDictUpdate, encode(encoded));
  }
  void clear() { call(internal::Op::kDictClear); }
  // to_map copies the whole dict.
  std::map<K, V> to_map() const {
    std::map<K, V> out;
    for (auto& [k, v] : items()) out.emplace(std::move(k), std::move(v));
    return out;
  }

 private:
  template <class T>
  std::vector<T> DecodeAll(internal::Op op) const {
    std::vector<T> out;
    for (const auto& bytes : call_as<std::vector<std::string>>(op)) out.push_back(decode<T>(bytes));
    return out;
  }
};

// A manager list. Python: Manager().list(). Negative indices count from the end.
template <class T>
class List : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  void append(const T& item) { call(internal::Op::kListAppend, encode(item)); }
  void extend(const std::vector<T>& items) {
    std::vector<std::string> encoded;
    for (const T& item : items) encoded.push_back(encode(item));
    call(internal::Op::kListExtend, encode(encoded));
  }
  // get/set/pop: mp::ValueError for an index out of range (Python: IndexError).
  T get(long index) const { return call_as<T>(internal::Op::kListGet, {}, {}, index); }
  void set(long index, const T& item) { call(internal::Op::kListSet, encode(item), {}, index); }
  T pop(long index = -1) { return call_as<T>(internal::Op::kListPop, {}, {}, index); }
  size_t size() const { return static_cast<size_t>(call_as<int64_t>(internal::Op::kListSize)); }
  std::vector<T> to_vector() const {
    std::vector<T> out;
    for (const auto& bytes : call_as<std::vector<std::string>>(internal::Op::kListAll)) {
      out.push_back(decode<T>(bytes));
    }
    return out;
  }
};

// Lock and RLock proxies. Python: Manager().Lock(), RLock(). Lockable.
class Lock : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  void acquire() { call(internal::Op::kLockAcquire, {}, {}, 1); }
  bool acquire(bool block) { return call_as<bool>(internal::Op::kLockAcquire, {}, {}, block ? 1 : 0); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return call_as<bool>(internal::Op::kLockAcquire, {}, {}, 1, internal::Seconds(timeout));
  }
  void release() { call(internal::Op::kLockRelease); }
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
};
using RLock = Lock;

class Semaphore : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  void acquire() { call(internal::Op::kSemAcquire, {}, {}, 1); }
  bool acquire(bool block) { return call_as<bool>(internal::Op::kSemAcquire, {}, {}, block ? 1 : 0); }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return call_as<bool>(internal::Op::kSemAcquire, {}, {}, 1, internal::Seconds(timeout));
  }
  void release() { call(internal::Op::kSemRelease); }
  int get_value() const { return static_cast<int>(call_as<int64_t>(internal::Op::kSemValue)); }
  void lock() { acquire(); }
  bool try_lock() { return acquire(false); }
  void unlock() { release(); }
};

class Event : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  void set() { call(internal::Op::kEventSet); }
  void clear() { call(internal::Op::kEventClear); }
  bool is_set() const { return call_as<bool>(internal::Op::kEventIsSet); }
  bool wait() { return call_as<bool>(internal::Op::kEventWait); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return call_as<bool>(internal::Op::kEventWait, {}, {}, 0, internal::Seconds(timeout));
  }
};

class Condition : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  // get_lock is the condition's lock (acquire it around wait/notify).
  Lock get_lock() const {
    internal::ObjectRef r = ref_;
    r.id = call_as<uint64_t>(internal::Op::kCondLock);
    return Lock(r);
  }
  void acquire() { get_lock().acquire(); }
  void release() { get_lock().release(); }
  void lock() { acquire(); }
  void unlock() { release(); }
  void wait() { call(internal::Op::kCondWait); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return call_as<bool>(internal::Op::kCondWait, {}, {}, 0, internal::Seconds(timeout));
  }
  void notify(int n = 1) { call(internal::Op::kCondNotify, {}, {}, n); }
  void notify_all() { call(internal::Op::kCondNotify, {}, {}, -1); }
};

class Barrier : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  int wait() { return static_cast<int>(call_as<int64_t>(internal::Op::kBarrierWait)); }
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return static_cast<int>(call_as<int64_t>(internal::Op::kBarrierWait, {}, {}, 0, internal::Seconds(timeout)));
  }
  void abort() { call(internal::Op::kBarrierAbort); }
  void reset() { call(internal::Op::kBarrierReset); }
  bool broken() const { return call_as<bool>(internal::Op::kBarrierBroken); }
  int parties() const { return static_cast<int>(call_as<int64_t>(internal::Op::kBarrierParties)); }
  int n_waiting() const { return static_cast<int>(call_as<int64_t>(internal::Op::kBarrierWaiting)); }
};

// A manager value. Python: Manager().Value(typecode, value).
template <class T>
class Value : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  T value() const { return call_as<T>(internal::Op::kValueGet); }
  void set_value(const T& v) { call(internal::Op::kValueSet, encode(v)); }
  // get_lock: an RLock for compound updates (value() and set_value() are
  // each atomic on their own).
  Lock get_lock() const {
    internal::ObjectRef r = ref_;
    r.id = call_as<uint64_t>(internal::Op::kValueLock);
    return Lock(r);
  }
};

// A namespace: named attributes of any serializable type.
// Python: Manager().Namespace(); ns.x = 1 is ns.set("x", 1).
class Namespace : public internal::ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  template <class T>
  void set(const std::string& name, const T& value) {
    call(internal::Op::kDictSet, encode(name), encode(value));
  }
  // get: mp::KeyError for an attribute never set.
  template <class T>
  T get(const std::string& name) const {
    return call_as<T>(internal::Op::kDictGet, encode(name));
  }
};

}  // namespace proxy

// BaseManager: a client of a manager server at a known address.
// Python: BaseManager(address, authkey).connect().
class BaseManager {
 public:
  // Connects to the server at `address` (a Unix socket path or host:port),
  // proving `authkey`. Throws mp::AuthenticationError for a wrong key and
  // mp::Error if nothing serves there.
  BaseManager(std::string address, std::string authkey);
  virtual ~BaseManager() = default;

  const std::string& address() const { return address_; }
  const std::string& authkey() const { return authkey_; }

  // The factories. An empty name creates a new object; a name returns the
  // object of that name, creating it the first time.
  template <class T>
  proxy::Queue<T> Queue(long maxsize = 0, const std::string& name = "") {
    return proxy::Queue<T>(create(internal::Kind::kQueue, name, {}, maxsize), maxsize);
  }
  template <class T>
  proxy::Queue<T> Queue(const std::string& name) {
    return Queue<T>(0, name);
  }
  template <class T>
  proxy::Queue<T> JoinableQueue(long maxsize = 0, const std::string& name = "") {
    return proxy::Queue<T>(create(internal::Kind::kJoinableQueue, name, {}, maxsize), maxsize);
  }
  template <class K, class V>
  proxy::Dict<K, V> dict(const std::string& name = "") {
    return proxy::Dict<K, V>(create(internal::Kind::kDict, name));
  }
  template <class T>
  proxy::List<T> list(const std::string& name = "") {
    return proxy::List<T>(create(internal::Kind::kList, name));
  }
  template <class T>
  proxy::Value<T> Value(const T& init = T{}, const std::string& name = "") {
    return proxy::Value<T>(create(internal::Kind::kValue, name, encode(init)));
  }
  proxy::Lock Lock(const std::string& name = "") { return proxy::Lock(create(internal::Kind::kLock, name)); }
  proxy::RLock RLock(const std::string& name = "") { return proxy::RLock(create(internal::Kind::kRLock, name)); }
  proxy::Semaphore Semaphore(int value = 1, const std::string& name = "") {
    return proxy::Semaphore(create(internal::Kind::kSemaphore, name, {}, value));
  }
  proxy::Semaphore BoundedSemaphore(int value = 1, const std::string& name = "") {
    return proxy::Semaphore(create(internal::Kind::kBoundedSemaphore, name, {}, value));
  }
  proxy::Event Event(const std::string& name = "") { return proxy::Event(create(internal::Kind::kEvent, name)); }
  // Condition on a new RLock, or on `lock` (a Lock or RLock of this manager).
  proxy::Condition Condition(std::optional<proxy::Lock> lock = std::nullopt, const std::string& name = "") {
    return proxy::Condition(create(internal::Kind::kCondition, name, {},
                                   lock ? static_cast<int64_t>(lock->ref().id) : 0));
  }
  proxy::Barrier Barrier(int parties, const std::string& name = "") {
    return proxy::Barrier(create(internal::Kind::kBarrier, name, {}, parties));
  }
  proxy::Namespace Namespace(const std::string& name = "") {
    return proxy::Namespace(create(internal::Kind::kNamespace, name));
  }

 protected:
  BaseManager() = default;
  internal::ObjectRef create(internal::Kind kind, const std::string& name, std::string initial = {},
                             int64_t parameter = 0);
  std::string address_;
  std::string authkey_;
};

// Keyword arguments of Manager.
struct ManagerOptions {
  // Empty: a Unix socket in a private 0700 directory (under $TMPDIR or
  // /tmp), removed at shutdown, or by the server if this process dies
  // without one. "host:port" serves TCP (port 0 picks one; address() tells
  // which) for clients on other machines.
  std::string address;
  // Empty: 32 random bytes.
  std::string authkey;
};

// Manager: starts a server process and is a client of it.
// Python: multiprocessing.Manager() / SyncManager.
class Manager : public BaseManager {
 public:
  Manager();
  explicit Manager(ManagerOptions options);
  // Shuts the server down.
  ~Manager() override;
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // shutdown stops the server and removes its socket file. Proxies then
  // throw mp::Error. Idempotent.
  void shutdown();
  // pid of the server process.
  pid_t pid() const { return server_ ? server_->pid() : 0; }

 private:
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Process> server_;
};

}  // namespace mp

#endif  // MANAGER_MANAGER_H_
