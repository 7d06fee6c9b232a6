#include "manager/manager_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <initializer_list>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/mutex.h"
#include "base/pidfd.h"
#include "ipc/byte_queue.h"
#include "ipc/codec.h"
#include "ipc/fd_passing.h"
#include "manager/manager_protocol.h"

namespace mp::internal {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration ToDuration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// An error to report to the client, by the name of its mp:: type.
struct Failure {
  std::string type;
  std::string message;
};

[[noreturn]] void Fail(std::string type, std::string message) {
  throw Failure{std::move(type), std::move(message)};
}

struct Object {
  explicit Object(Kind k) : kind(k) {}
  virtual ~Object() = default;
  Kind kind;
  std::condition_variable cv;  // signalled whenever the object's state changes
};

// A queue lives in a memfd-backed ByteQueue: local clients map it and use it
// directly (no round trips); remote clients reach it through this server.
struct QueueObject : Object {
  using Object::Object;
  std::shared_ptr<ByteQueue> queue;
};

struct DictObject : Object {
  using Object::Object;
  std::list<std::pair<std::string, std::string>> entries;  // insertion order, as Python
  std::unordered_map<std::string, std::list<std::pair<std::string, std::string>>::iterator> index;
};

struct ListObject : Object {
  using Object::Object;
  std::vector<std::string> items;
};

struct ValueObject : Object {
  using Object::Object;
  std::string value;
  uint64_t lock = 0;
};

struct LockObject : Object {
  using Object::Object;
  uint64_t owner = 0;  // connection id
  long count = 0;
};

struct SemaphoreObject : Object {
  using Object::Object;
  long value = 0;
  long bound = 0;  // 0: unbounded
};

struct EventObject : Object {
  using Object::Object;
  bool flag = false;
};

struct ConditionObject : Object {
  using Object::Object;
  uint64_t lock = 0;
  long sleepers = 0;
  long notified = 0;  // wake-ups granted and not yet taken
};

struct BarrierObject : Object {
  using Object::Object;
  long parties = 0;
  long count = 0;
  uint64_t generation = 0;
  uint64_t completed = UINT64_MAX;
  bool broken = false;
  // The connections of the parties counted in `count` (their threads'
  // t_client_fd): an arriving party drops those whose client is gone before
  // it counts itself, so a dead party never completes the barrier.
  std::set<int> waiting;
};

// The connection of the client this thread serves (ServeClient), for
// ClientGone.
thread_local int t_client_fd = -1;
constexpr auto kClientCheck = std::chrono::milliseconds(100);

// ClientGone: whether this thread's client has hung up (or its socket
// failed): a blocked call of a dead client is cancelled (Server::WaitFor).
bool HungUp(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}
bool ClientGone() { return t_client_fd >= 0 && HungUp(t_client_fd); }

class Server {
 public:
  // Handle serves one request for connection `conn`; `lock` holds mu_.
  // Every object's state, like the server's, is guarded by mu_ (the
  // objects' fields cannot name it, so only the server's are annotated).
  Response Handle(uint64_t conn, Request& req, MutexLock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLocksOf(uint64_t conn) ABSL_LOCKS_EXCLUDED(mu_);
  Mutex mu_;
  int attach_fd_ ABSL_GUARDED_BY(mu_) = -1;  // set by kQueueAttach, taken by ServeClient

 private:
  // Get is object `id` as a T, if it is of one of the `allowed` kinds (each
  // stored as a T): any other id or kind is an error for the client, never
  // a cast to the wrong type.
  template <class T>
  T& Get(uint64_t id, std::initializer_list<Kind> allowed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = objects_.find(id);
    if (it == objects_.end()) Fail("Error", "manager: no object with id " + std::to_string(id));
    Object* o = it->second.get();
    if (std::find(allowed.begin(), allowed.end(), o->kind) == allowed.end()) {
      Fail("Error", "manager: object " + std::to_string(id) + " is not of the proxy's type");
    }
    return static_cast<T&>(*o);
  }
  uint64_t Create(const Request& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Add(std::unique_ptr<Object> o) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const uint64_t id = next_id_++;
    objects_.emplace(id, std::move(o));
    return id;
  }
  uint64_t NewLock(bool recursive) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Add(std::make_unique<LockObject>(recursive ? Kind::kRLock : Kind::kLock));
  }

  // Waits on o.cv until ready() or the request's timeout; false on timeout.
  // It wakes every kClientCheck, and whenever ready() turns true, to see
  // whether the client is still there: a client that died while it waited
  // has its call cancelled (Fail), so it takes nothing (a lock, a semaphore
  // unit, a notification) meant for the living.
  template <class Pred>
  bool WaitFor(Object& o, const Request& req, MutexLock& lock, Pred ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ready()) return true;  // no wait: the client was there to ask
    std::optional<Clock::time_point> deadline;
    if (req.timeout >= 0) {
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(req.timeout));
    }
    for (;;) {
      const Clock::time_point slice = Clock::now() + kClientCheck;
      const bool is_ready = lock.WaitUntil(o.cv, deadline ? std::min(*deadline, slice) : slice, ready);
      if (ClientGone()) Fail("Error", "manager: the client is gone; its call is cancelled");
      if (is_ready) return true;
      if (deadline && Clock::now() >= *deadline) return false;
    }
  }

  // WaitForParty: a barrier party's wait; a party whose client is gone
  // leaves the count it had joined.
  bool WaitForParty(BarrierObject& b, const Request& req, MutexLock& lock, uint64_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    try {
      return WaitFor(b, req, lock, [&] { return b.generation != generation; });
    } catch (const Failure&) {
      // Gone: out of the count, unless an arriving party has taken it out.
      if (b.generation == generation && b.waiting.erase(t_client_fd) > 0) --b.count;
      throw;
    }
  }

  bool AcquireLock(uint64_t conn, LockObject& l, const Request& req, MutexLock& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLock(uint64_t conn, LockObject& l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unordered_map<uint64_t, std::unique_ptr<Object>> objects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> names_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

uint64_t Server::Create(const Request& req) {
  if (!req.a.empty()) {
    auto it = names_.find(req.a);
    if (it != names_.end()) {
      if (objects_.at(it->second)->kind != req.kind) {
        Fail("Error", "manager: the object named '" + req.a + "' is of another type");
      }
      return it->second;
    }
  }
  uint64_t id = 0;
  switch (req.kind) {
    case Kind::kQueue:
    case Kind::kJoinableQueue: {
      auto q = std::make_unique<QueueObject>(req.kind);
      q->queue = ByteQueue::Shareable(req.n, ByteQueue::kDefaultCapacity, req.kind == Kind::kJoinableQueue);
      id = Add(std::move(q));
      break;
    }
    case Kind::kDict:
    case Kind::kNamespace:
      id = Add(std::make_unique<DictObject>(req.kind));
      break;
    case Kind::kList:
      id = Add(std::make_unique<ListObject>(req.kind));
      break;
    case Kind::kValue: {
      auto v = std::make_unique<ValueObject>(req.kind);
      v->value = req.b;
      v->lock = NewLock(true);
      id = Add(std::move(v));
      break;
    }
    case Kind::kLock:
    case Kind::kRLock:
      id = NewLock(req.kind == Kind::kRLock);
      break;
    case Kind::kSemaphore:
    case Kind::kBoundedSemaphore: {
      if (req.n < 0) Fail("ValueError", "Semaphore: initial value must be >= 0");
      auto s = std::make_unique<SemaphoreObject>(req.kind);
      s->value = req.n;
      s->bound = req.kind == Kind::kBoundedSemaphore ? req.n : 0;
      id = Add(std::move(s));
      break;
    }
    case Kind::kEvent:
      id = Add(std::make_unique<EventObject>(req.kind));
      break;
    case Kind::kCondition: {
      auto c = std::make_unique<ConditionObject>(req.kind);
      if (req.n != 0) {
        Get<LockObject>(static_cast<uint64_t>(req.n), {Kind::kLock, Kind::kRLock});
        c->lock = static_cast<uint64_t>(req.n);
      } else {
        c->lock = NewLock(true);
      }
      id = Add(std::move(c));
      break;
    }
    case Kind::kBarrier: {
      if (req.n <= 0) Fail("ValueError", "Barrier: parties must be > 0");
      auto b = std::make_unique<BarrierObject>(req.kind);
      b->parties = req.n;
      id = Add(std::move(b));
      break;
    }
  }
  if (!req.a.empty()) names_[req.a] = id;
  return id;
}

bool Server::AcquireLock(uint64_t conn, LockObject& l, const Request& req, MutexLock& lock) {
  const bool recursive = l.kind == Kind::kRLock;
  if (recursive && l.owner == conn) {
    ++l.count;
    return true;
  }
  if (l.owner == conn && req.timeout < 0 && req.n != 0) {
    Fail("Error", "Lock.acquire: this client already holds the lock (it would deadlock)");
  }
  auto free = [&] { return l.owner == 0; };
  if (req.n == 0) {
    if (!free()) return false;
  } else if (!WaitFor(l, req, lock, free)) {
    return false;
  }
  l.owner = conn;
  l.count = 1;
  return true;
}

void Server::ReleaseLock(uint64_t conn, LockObject& l) {
  if (l.owner == 0) Fail("ValueError", "release: the lock is not held");
  if (l.kind == Kind::kRLock && l.owner != conn) {
    Fail("ValueError", "RLock.release: cannot release un-acquired lock");
  }
  if (--l.count > 0) return;
  l.owner = 0;
  l.cv.notify_all();
}

void Server::ReleaseLocksOf(uint64_t conn) {
  MutexLock guard(mu_);
  for (auto& [id, o] : objects_) {
    if (o->kind != Kind::kLock && o->kind != Kind::kRLock) continue;
    auto& l = static_cast<LockObject&>(*o);
    if (l.owner == conn) {
      l.owner = 0;
      l.count = 0;
      l.cv.notify_all();
    }
  }
}

Response Server::Handle(uint64_t conn, Request& req, MutexLock& lock) {
  Response r;
  auto reply = [&r](const auto& value) { r.payload = encode(value); };
  switch (req.op) {
    case Op::kCreate:
      reply(Create(req));
      break;
    case Op::kShutdown:
      break;

    case Op::kQueuePut:
    case Op::kQueueGet:
    case Op::kQueueJoin: {
      // Blocking calls wait on the shared queue itself, with the server's
      // mutex released, so no other client waits for this one.
      std::shared_ptr<ByteQueue> q = Get<QueueObject>(req.object, {Kind::kQueue, Kind::kJoinableQueue}).queue;
      const Deadline deadline = req.n == 0 && req.op != Op::kQueueJoin ? Deadline(Clock::now())
                                : req.timeout < 0                      ? Deadline()
                                                                       : Deadline(Clock::now() + ToDuration(req.timeout));
      // (mu_ itself, not `lock`: clang 14 cannot follow a scoped unlock.
      // Taken again on every way out, so `lock` still owns it after.)
      // In slices (kClientCheck), so that a remote client that dies while
      // it waits has its call cancelled, not completed for nobody; an item
      // a dead client's get took within its last slice is put back (at the
      // end of the queue: it cannot go back in its place).
      bool ok = false;
      mu_.unlock();
      try {
        for (;;) {
          if (ClientGone()) Fail("Error", "manager: the client is gone; its call is cancelled");
          Deadline slice = Clock::now() + kClientCheck;
          if (deadline && *deadline < *slice) slice = deadline;
          if (req.op == Op::kQueuePut) {
            ok = q->Put(req.a, slice);
          } else if (req.op == Op::kQueueGet) {
            ok = q->Get(&r.payload, slice);
          } else {
            ok = q->Join(slice);
          }
          if (ok || Expired(deadline)) break;
        }
        if (ok && req.op == Op::kQueueGet && ClientGone()) {
          q->Put(r.payload, Clock::now() + std::chrono::seconds(1));
          Fail("Error", "manager: the client is gone; its call is cancelled");
        }
      } catch (...) {
        mu_.lock();
        throw;
      }
      mu_.lock();
      if (req.op == Op::kQueueJoin) {
        reply(ok);
      } else if (!ok) {
        req.op == Op::kQueuePut ? Fail("Full", "queue is full") : Fail("Empty", "queue is empty");
      }
      break;
    }
    case Op::kQueueSize:
    case Op::kQueueEmpty:
    case Op::kQueueFull: {
      auto& q = *Get<QueueObject>(req.object, {Kind::kQueue, Kind::kJoinableQueue}).queue;
      const long n = q.qsize();
      if (req.op == Op::kQueueSize) reply(static_cast<int64_t>(n));
      if (req.op == Op::kQueueEmpty) reply(n == 0);
      if (req.op == Op::kQueueFull) reply(q.maxsize() > 0 && n >= q.maxsize());
      break;
    }
    case Op::kQueueTaskDone:
      if (!Get<QueueObject>(req.object, {Kind::kJoinableQueue}).queue->TaskDone()) {
        Fail("ValueError", "task_done() called too many times");
      }
      break;
    case Op::kQueueAttach:
      // The reply carries the server's pid; ServeClient sends the memfd after it.
      reply(static_cast<int64_t>(getpid()));
      attach_fd_ = Get<QueueObject>(req.object, {Kind::kQueue, Kind::kJoinableQueue}).queue->fd();
      break;

    case Op::kDictSet: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      auto it = d.index.find(req.a);
      if (it != d.index.end()) {
        it->second->second = std::move(req.b);
      } else {
        d.entries.emplace_back(req.a, std::move(req.b));
        d.index.emplace(std::move(req.a), std::prev(d.entries.end()));
      }
      break;
    }
    case Op::kDictGet: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      auto it = d.index.find(req.a);
      if (it != d.index.end()) {
        r.payload = it->second->second;
      } else if (req.n == 1) {
        r.payload = std::move(req.b);
      } else {
        Fail("KeyError", "key not found");
      }
      break;
    }
    case Op::kDictContains: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      reply(d.index.count(req.a) > 0);
      break;
    }
    case Op::kDictPop: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      auto it = d.index.find(req.a);
      if (it != d.index.end()) {
        r.payload = std::move(it->second->second);
        d.entries.erase(it->second);
        d.index.erase(it);
      } else if (req.n == 1) {
        r.payload = std::move(req.b);
      } else {
        Fail("KeyError", "key not found");
      }
      break;
    }
    case Op::kDictSize:
      reply(static_cast<int64_t>(Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace}).entries.size()));
      break;
    case Op::kDictKeys:
    case Op::kDictValues:
    case Op::kDictItems: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      if (req.op == Op::kDictItems) {
        reply(std::vector<std::pair<std::string, std::string>>(d.entries.begin(), d.entries.end()));
      } else {
        std::vector<std::string> out;
        for (const auto& [k, v] : d.entries) out.push_back(req.op == Op::kDictKeys ? k : v);
        reply(out);
      }
      break;
    }
    case Op::kDictUpdate: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      for (auto& [k, v] : decode<std::vector<std::pair<std::string, std::string>>>(req.a)) {
        auto it = d.index.find(k);
        if (it != d.index.end()) {
          it->second->second = std::move(v);
        } else {
          d.entries.emplace_back(k, std::move(v));
          d.index.emplace(std::move(k), std::prev(d.entries.end()));
        }
      }
      break;
    }
    case Op::kDictClear: {
      auto& d = Get<DictObject>(req.object, {Kind::kDict, Kind::kNamespace});
      d.entries.clear();
      d.index.clear();
      break;
    }

    case Op::kListAppend:
      Get<ListObject>(req.object, {Kind::kList}).items.push_back(std::move(req.a));
      break;
    case Op::kListExtend: {
      auto& l = Get<ListObject>(req.object, {Kind::kList});
      for (auto& item : decode<std::vector<std::string>>(req.a)) l.items.push_back(std::move(item));
      break;
    }
    case Op::kListGet:
    case Op::kListSet:
    case Op::kListPop: {
      auto& l = Get<ListObject>(req.object, {Kind::kList});
      const int64_t size = static_cast<int64_t>(l.items.size());
      int64_t i = req.n < 0 ? size + req.n : req.n;
      if (i < 0 || i >= size) Fail("ValueError", "list index out of range");
      if (req.op == Op::kListGet) {
        r.payload = l.items[static_cast<size_t>(i)];
      } else if (req.op == Op::kListSet) {
        l.items[static_cast<size_t>(i)] = std::move(req.a);
      } else {
        r.payload = std::move(l.items[static_cast<size_t>(i)]);
        l.items.erase(l.items.begin() + i);
      }
      break;
    }
    case Op::kListSize:
      reply(static_cast<int64_t>(Get<ListObject>(req.object, {Kind::kList}).items.size()));
      break;
    case Op::kListAll:
      reply(Get<ListObject>(req.object, {Kind::kList}).items);
      break;

    case Op::kValueGet:
      r.payload = Get<ValueObject>(req.object, {Kind::kValue}).value;
      break;
    case Op::kValueSet:
      Get<ValueObject>(req.object, {Kind::kValue}).value = std::move(req.a);
      break;
    case Op::kValueLock:
      reply(Get<ValueObject>(req.object, {Kind::kValue}).lock);
      break;

    case Op::kLockAcquire:
      reply(AcquireLock(conn, Get<LockObject>(req.object, {Kind::kLock, Kind::kRLock}), req, lock));
      break;
    case Op::kLockRelease:
      ReleaseLock(conn, Get<LockObject>(req.object, {Kind::kLock, Kind::kRLock}));
      break;

    case Op::kSemAcquire: {
      auto& s = Get<SemaphoreObject>(req.object, {Kind::kSemaphore, Kind::kBoundedSemaphore});
      auto available = [&] { return s.value > 0; };
      const bool got = req.n == 0 ? available() : WaitFor(s, req, lock, available);
      if (got) --s.value;
      reply(got);
      break;
    }
    case Op::kSemRelease: {
      auto& s = Get<SemaphoreObject>(req.object, {Kind::kSemaphore, Kind::kBoundedSemaphore});
      if (s.bound > 0 && s.value >= s.bound) {
        Fail("ValueError", "BoundedSemaphore.release: released too many times");
      }
      ++s.value;
      s.cv.notify_all();
      break;
    }
    case Op::kSemValue:
      reply(static_cast<int64_t>(Get<SemaphoreObject>(req.object, {Kind::kSemaphore, Kind::kBoundedSemaphore}).value));
      break;

    case Op::kEventSet: {
      auto& e = Get<EventObject>(req.object, {Kind::kEvent});
      e.flag = true;
      e.cv.notify_all();
      break;
    }
    case Op::kEventClear:
      Get<EventObject>(req.object, {Kind::kEvent}).flag = false;
      break;
    case Op::kEventIsSet:
      reply(Get<EventObject>(req.object, {Kind::kEvent}).flag);
      break;
    case Op::kEventWait: {
      auto& e = Get<EventObject>(req.object, {Kind::kEvent});
      WaitFor(e, req, lock, [&] { return e.flag; });
      reply(e.flag);
      break;
    }

    case Op::kCondLock:
      reply(Get<ConditionObject>(req.object, {Kind::kCondition}).lock);
      break;
    case Op::kCondWait: {
      auto& c = Get<ConditionObject>(req.object, {Kind::kCondition});
      auto& l = Get<LockObject>(c.lock, {Kind::kLock, Kind::kRLock});
      if (l.owner != conn) Fail("ValueError", "Condition.wait: the lock is not held by this client");
      const long depth = l.count;
      l.owner = 0;
      l.count = 0;
      l.cv.notify_all();
      ++c.sleepers;
      bool notified;
      try {
        notified = WaitFor(c, req, lock, [&] { return c.notified > 0; });
      } catch (const Failure&) {
        --c.sleepers;  // cancelled (the client is gone): it takes no notification
        c.notified = std::min(c.notified, c.sleepers);
        throw;
      }
      if (notified) --c.notified;
      --c.sleepers;
      lock.Wait(l.cv, [&] { return l.owner == 0; });
      l.owner = conn;
      l.count = depth;
      reply(notified);
      break;
    }
    case Op::kCondNotify: {
      auto& c = Get<ConditionObject>(req.object, {Kind::kCondition});
      auto& l = Get<LockObject>(c.lock, {Kind::kLock, Kind::kRLock});
      if (l.owner != conn) Fail("ValueError", "Condition.notify: the lock is not held by this client");
      const long waiting = c.sleepers - c.notified;
      const long wake = req.n < 0 ? waiting : std::min<long>(req.n, waiting);
      if (wake > 0) {
        c.notified += wake;
        c.cv.notify_all();
      }
      break;
    }

    case Op::kBarrierWait: {
      auto& b = Get<BarrierObject>(req.object, {Kind::kBarrier});
      if (b.broken) Fail("BrokenBarrierError", "barrier is broken");
      const uint64_t generation = b.generation;
      for (auto it = b.waiting.begin(); it != b.waiting.end();) {
        if (HungUp(*it)) {
          it = b.waiting.erase(it);
          --b.count;
        } else {
          ++it;
        }
      }
      const long index = b.count++;
      b.waiting.insert(t_client_fd);
      if (b.count == b.parties) {
        b.count = 0;
        b.waiting.clear();
        b.completed = generation;
        ++b.generation;
        b.cv.notify_all();
      } else if (!WaitForParty(b, req, lock, generation)) {
        b.broken = true;
        b.count = 0;
        b.waiting.clear();
        ++b.generation;
        b.cv.notify_all();
        Fail("BrokenBarrierError", "Barrier.wait timed out; the barrier is now broken");
      }
      if (b.completed != generation) Fail("BrokenBarrierError", "barrier is broken");
      reply(static_cast<int64_t>(index));
      break;
    }
    case Op::kBarrierAbort:
    case Op::kBarrierReset: {
      auto& b = Get<BarrierObject>(req.object, {Kind::kBarrier});
      b.broken = req.op == Op::kBarrierAbort;
      b.count = 0;
      b.waiting.clear();
      ++b.generation;
      b.cv.notify_all();
      break;
    }
    case Op::kBarrierBroken:
      reply(Get<BarrierObject>(req.object, {Kind::kBarrier}).broken);
      break;
    case Op::kBarrierParties:
      reply(static_cast<int64_t>(Get<BarrierObject>(req.object, {Kind::kBarrier}).parties));
      break;
    case Op::kBarrierWaiting:
      reply(static_cast<int64_t>(Get<BarrierObject>(req.object, {Kind::kBarrier}).count));
      break;
  }
  return r;
}

void ServeClient(Server& server, Connection conn, uint64_t conn_id) {
  t_client_fd = conn.fileno();
  // A remote client that vanishes (its machine off the network) is noticed
  // within minutes and its locks released (ReleaseLocksOf below): TCP
  // keepalive after 60 s idle, 3 probes 10 s apart. (No-ops on Unix sockets.)
  const int on = 1, idle = 60, interval = 10, probes = 3;
  setsockopt(conn.fileno(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  for (;;) {
    Request req;
    try {
      req = conn.recv<Request>();
    } catch (const Error&) {
      break;  // Gone (or garbage): drop the client, keep serving the others.
    }
    if (req.op == Op::kShutdown) {
      try {
        conn.send(Response{});
      } catch (const Error&) {
      }
      std::fflush(nullptr);
      _exit(0);
    }
    Response r;
    int attach_fd = -1;
    {
      MutexLock lock(server.mu_);
      try {
        server.attach_fd_ = -1;
        r = server.Handle(conn_id, req, lock);
        attach_fd = std::exchange(server.attach_fd_, -1);
      } catch (const Failure& f) {
        r.ok = false;
        r.error_type = f.type;
        r.message = f.message;
      } catch (const std::exception& e) {
        r.ok = false;
        r.error_type = "Error";
        r.message = e.what();
      }
    }
    if (req.oneway) continue;
    try {
      conn.send(r);
      if (r.ok && attach_fd >= 0) SendFd(conn.fileno(), attach_fd);
    } catch (const Error&) {
      break;
    }
  }
  // A client that died holding a lock through a proxy must not block others.
  server.ReleaseLocksOf(conn_id);
}

}  // namespace

int ServeManager(Listener& listener, pid_t owner) {
  Server& server = *new Server;  // Lives until the process exits; threads use it.
  const int owner_fd = owner > 0 ? internal::PidfdOpen(owner) : -1;
  // Watching the owner's pidfd, the server outlives it just long enough to
  // remove its socket file and directory: the daemon's death signal
  // (SIGKILL, which allows no clean-up) is not needed then.
  if (owner_fd >= 0) prctl(PR_SET_PDEATHSIG, 0);
  if (owner > 0 && getppid() != owner) {  // it died before we watched it
    listener.close();
    return 0;
  }
  uint64_t next_conn = 1;
  // > 0 after accept() failed for want of descriptors or memory (EMFILE...):
  // the client waits in the backlog and the listener stays readable, so the
  // loop watches only the owner for this long (10 ms doubling to 1 s, reset
  // by the next accept) instead of spinning.
  std::chrono::milliseconds pause{0};
  for (;;) {
    pollfd polls[2] = {{pause.count() > 0 ? -1 : listener.fileno(), POLLIN, 0}, {owner_fd, POLLIN, 0}};
    const int n = ::poll(polls, 2, pause.count() > 0 ? static_cast<int>(pause.count()) : -1);
    if (n < 0) continue;  // EINTR
    if (polls[1].revents) {
      // The owner is gone without shutting us down: its socket file and
      // private directory are ours to remove.
      listener.close();
      return 0;
    }
    if (pause.count() == 0 && !polls[0].revents) continue;
    const std::chrono::milliseconds paused = std::exchange(pause, std::chrono::milliseconds(0));
    try {
      Connection conn = listener.accept();
      // A thread that cannot be had refuses this client (its connection is
      // closed with the thread's arguments); the server lives.
      std::thread(ServeClient, std::ref(server), std::move(conn), next_conn++).detach();
    } catch (const AuthenticationError&) {
      // A client that failed the handshake: nothing was touched.
    } catch (const std::system_error&) {
      // No thread for this client: refused, as above.
    } catch (const Error&) {
      pause = std::clamp(paused * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    }
  }
}

}  // namespace mp::internal
