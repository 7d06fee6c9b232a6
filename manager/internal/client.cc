#include "manager/internal/client.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/exception_types.h"
#include "base/mutex.h"
#include "base/pidfd.h"
#include "base/scoped_fd.h"
#include "ipc/byte_queue.h"
#include "ipc/fd_passing.h"
#include "ipc/listener.h"
#include "process/process.h"

namespace mp::internal {
namespace {

// One connection per (process, thread, manager address). A forked child
// opens its own: sharing its parent's socket would interleave messages.
struct ConnectionCache {
  ~ConnectionCache();
  pid_t pid = 0;
  std::unordered_map<std::string, Connection> connections;
};

thread_local ConnectionCache tls_cache;
// Set when this thread's cache is destroyed (thread or process exit): a
// proxy destroyed after it (a static one) drops nothing.
thread_local bool t_cache_gone = false;
ConnectionCache::~ConnectionCache() { t_cache_gone = true; }

// The innermost ReplyPins scope of this thread.
thread_local ReplyPins* t_reply_pins = nullptr;
// The open Collecting scope of this thread, if any.
thread_local std::vector<uint64_t>* t_collecting = nullptr;

Connection& ConnectionTo(const std::string& address, const std::string& authkey) {
  ConnectionCache& cache = tls_cache;
  if (cache.pid != getpid()) {
    // Copies inherited from the parent: closing them here leaves the
    // parent's descriptors open.
    cache.connections.clear();
    cache.pid = getpid();
  }
  auto it = cache.connections.find(address);
  if (it == cache.connections.end()) {
    it = cache.connections.emplace(address, Client(address, authkey)).first;
  }
  return it->second;
}

void Forget(const std::string& address) { tls_cache.connections.erase(address); }

// Managers of this process: their keys, and those shut down.
struct Managers {
  Mutex mu;
  std::map<std::string, std::string> keys ABSL_GUARDED_BY(mu);
  std::set<std::string> ended ABSL_GUARDED_BY(mu);
};
Managers& TheManagers() {
  static Managers* managers = new Managers;  // used until exit, never destroyed
  return *managers;
}

bool Ended(const std::string& address) {
  Managers& m = TheManagers();
  MutexLock lock(m.mu);
  return m.ended.count(address) > 0;
}

}  // namespace

void ThrowFor(wire::ErrorCode code, const std::string& message) {
  using wire::ErrorCode;
  switch (code) {
    case ErrorCode::kKeyError:
      throw KeyError(message);
    case ErrorCode::kIndexError:
      throw IndexError(message);
    case ErrorCode::kValueError:
      throw ValueError(message);
    case ErrorCode::kEmpty:
      throw Empty(message);
    case ErrorCode::kFull:
      throw Full(message);
    case ErrorCode::kBrokenBarrier:
      throw BrokenBarrierError(message);
    case ErrorCode::kRemote: {
      // "<type>\n<what>": registered types come back as themselves.
      const size_t newline = message.find('\n');
      const std::string type = message.substr(0, newline);
      const std::string what = newline == std::string::npos ? "" : message.substr(newline + 1);
      std::rethrow_exception(RebuildException(type, what));
    }
    case ErrorCode::kNone:
    case ErrorCode::kError:
      break;
  }
  throw Error(message);
}

wire::Response CallRaw(const std::string& address, const std::string& authkey, wire::Request request) {
  wire::Response response;
  try {
    Connection& conn = ConnectionTo(address, authkey);
    conn.send(request);
    if (request.oneway) return {};
    response = conn.recv<wire::Response>();
  } catch (const AuthenticationError&) {
    Forget(address);
    throw;
  } catch (const Error& e) {
    Forget(address);
    throw Error("manager at " + address + " is unreachable (shut down?): " + e.what());
  }
  if (response.error != wire::ErrorCode::kNone) ThrowFor(response.error, response.message);
  return response;
}

void RegisterManagerKey(const std::string& address, const std::string& authkey) {
  Managers& m = TheManagers();
  MutexLock lock(m.mu);
  m.keys[address] = authkey;
  m.ended.erase(address);
}

std::string KeyFor(const std::string& address) {
  {
    Managers& m = TheManagers();
    MutexLock lock(m.mu);
    auto it = m.keys.find(address);
    if (it != m.keys.end()) return it->second;
  }
  return current_process().authkey();
}

ObjectHandle::ObjectHandle(ObjectRef ref, uint64_t pin) : ref_(std::move(ref)), owner_(getpid()) {
  // One-way: while the pin holds its reference, the order of this and any
  // later drop does not matter (see server.h).
  CallOneWay(ref_.address, ref_.authkey, wire::AdoptPin{{ref_.id}, pin});
}

ObjectHandle::~ObjectHandle() {
  if (getpid() != owner_ || t_cache_gone || Ended(ref_.address)) return;
  try {
    CallOneWay(ref_.address, ref_.authkey, wire::DropReference{{ref_.id}});
  } catch (const std::exception&) {
    // The manager is gone: nothing to drop.
  }
}

LocalQueue* ObjectHandle::local_queue() const {
  std::call_once(local_once_, [this] { local_ = LocalQueueFor(ref_); });
  return local_.get();
}

uint64_t PinForTransit(const ObjectRef& ref) {
  const uint64_t pin = Call(ref.address, ref.authkey, wire::Pin{{ref.id}});
  if (t_collecting != nullptr) t_collecting->push_back(pin);
  return pin;
}

ReplyPins::ReplyPins(const std::string& address, const std::string& authkey, std::vector<wire::PinnedId> pins)
    : address_(address), authkey_(authkey), pins_(std::move(pins)), outer_(std::exchange(t_reply_pins, this)) {}

ReplyPins::~ReplyPins() {
  t_reply_pins = outer_;
  for (const wire::PinnedId& left : pins_) {
    try {
      // Adopted and dropped at once: the pin's reference goes.
      CallOneWay(address_, authkey_, wire::AdoptPin{{left.id}, left.pin});
      CallOneWay(address_, authkey_, wire::DropReference{{left.id}});
    } catch (const std::exception&) {
      return;  // the manager is gone: nothing to release
    }
  }
}

std::optional<uint64_t> ReplyPins::Take(const std::string& address, uint64_t id) {
  ReplyPins* scope = t_reply_pins;
  if (scope == nullptr || scope->address_ != address) return std::nullopt;
  for (auto it = scope->pins_.begin(); it != scope->pins_.end(); ++it) {
    if (it->id == id) {
      const uint64_t pin = it->pin;
      scope->pins_.erase(it);
      return pin;
    }
  }
  return std::nullopt;
}

std::shared_ptr<const ObjectHandle> Rebuild(std::string address, uint64_t id, uint64_t pin) {
  if (auto reply_pin = ReplyPins::Take(address, id)) pin = *reply_pin;
  std::string key = KeyFor(address);
  return std::make_shared<const ObjectHandle>(ObjectRef{std::move(address), std::move(key), id}, pin);
}

Collecting::Collecting() : outer_(std::exchange(t_collecting, &pins_)) {}
Collecting::~Collecting() { t_collecting = outer_; }
std::vector<uint64_t> Collecting::Take() { return std::move(pins_); }

wire::Wait WaitFor(const Deadline& deadline) {
  if (!deadline) return wire::Wait{true, -1};
  const double left = std::chrono::duration<double>(*deadline - Clock::now()).count();
  if (left <= 0) return wire::Wait{false, -1};
  return wire::Wait{true, left};
}

// ---- Local queues ----------------------------------------------------------

struct LocalQueue {
  std::shared_ptr<ByteQueue> queue;
  ScopedFd server;  // pidfd of the manager's server
  // When CheckServer next looks at the pidfd (steady clock, ns).
  std::atomic<int64_t> next_check{0};
};

namespace {

// The attached queues of this process, by "address#id"; nullptr marks a
// queue that cannot be attached (remote manager). Forked children inherit
// the mappings and pidfds, which stay valid.
ABSL_CONST_INIT Mutex g_local_mu;
std::map<std::string, std::shared_ptr<LocalQueue>>* const g_local ABSL_PT_GUARDED_BY(g_local_mu) =
    new std::map<std::string, std::shared_ptr<LocalQueue>>;

bool IsUnixAddress(const std::string& address) {
  return address.find('/') != std::string::npos || address.rfind(':') == std::string::npos;
}

std::shared_ptr<LocalQueue> Attach(const ObjectRef& ref) {
  if (!IsUnixAddress(ref.address)) return nullptr;
  try {
    const pid_t server = static_cast<pid_t>(Call(ref.address, ref.authkey, wire::QueueAttach{{ref.id}}));
    const int fd = RecvFd(ConnectionTo(ref.address, ref.authkey).fileno());
    auto local = std::make_shared<LocalQueue>();
    local->queue = ByteQueue::Attach(fd);
    local->server.reset(PidfdOpen(server));
    if (!local->server.valid()) return nullptr;
    return local;
  } catch (const Error&) {
    Forget(ref.address);
    return nullptr;
  }
}

// A shared-memory queue cannot see its server die; the calls check its
// pidfd: at most every kCheckEvery (a poll per item would cost more than the
// item), and before every blocking wait (`always`).
constexpr int64_t kCheckEveryNs = 10'000'000;

void CheckServer(LocalQueue& q, bool always = false) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (!always && now < q.next_check.load(std::memory_order_relaxed)) return;
  if (PidfdEnded(q.server.get())) throw Error("manager is unreachable (shut down or dead)");
  q.next_check.store(now + kCheckEveryNs, std::memory_order_relaxed);
}

// Blocking calls wait in slices, checking the server between them, so that
// a dead manager gives an error instead of a wait forever.
constexpr auto kLivenessSlice = std::chrono::milliseconds(250);

template <class Attempt>
bool WaitInSlices(LocalQueue& q, const Deadline& deadline, Attempt attempt) {
  for (bool first = true;; first = false) {
    CheckServer(q, /*always=*/!first);
    Deadline slice = Clock::now() + kLivenessSlice;
    if (deadline && *deadline < *slice) slice = deadline;
    if (attempt(slice)) return true;
    if (deadline && Clock::now() >= *deadline) return false;
  }
}

// Drops this process's attachments to the queues of the manager at
// `address` (their memfd mappings and the server's pidfd): a program that
// makes managers one after the other keeps no descriptor of the old ones.
void ForgetLocalQueues(const std::string& address) {
  const std::string prefix = address + "#";
  std::vector<std::shared_ptr<LocalQueue>> dropped;  // released after the lock
  MutexLock lock(g_local_mu);
  for (auto it = g_local->lower_bound(prefix); it != g_local->end() && it->first.starts_with(prefix);) {
    dropped.push_back(std::move(it->second));
    it = g_local->erase(it);
  }
}

}  // namespace

void ForgetManager(const std::string& address) {
  {
    Managers& m = TheManagers();
    MutexLock lock(m.mu);
    m.ended.insert(address);
  }
  Forget(address);
  ForgetLocalQueues(address);
}

std::shared_ptr<LocalQueue> LocalQueueFor(const ObjectRef& ref) {
  const std::string key = ref.address + "#" + std::to_string(ref.id);
  {
    MutexLock lock(g_local_mu);
    auto it = g_local->find(key);
    if (it != g_local->end()) return it->second;
  }
  auto local = Attach(ref);
  MutexLock lock(g_local_mu);
  return g_local->emplace(key, std::move(local)).first->second;
}

void LocalPut(LocalQueue& q, std::string_view bytes, const Deadline& deadline) {
  if (!WaitInSlices(q, deadline, [&](const Deadline& d) { return q.queue->Put(bytes, d); })) throw Full();
}

std::string LocalGet(LocalQueue& q, const Deadline& deadline) {
  std::string out;
  if (!WaitInSlices(q, deadline, [&](const Deadline& d) { return q.queue->Get(&out, d); })) throw Empty();
  return out;
}

long LocalSize(LocalQueue& q) {
  CheckServer(q);
  return q.queue->qsize();
}

long LocalMaxsize(LocalQueue& q) { return q.queue->maxsize(); }

void LocalTaskDone(LocalQueue& q) {
  CheckServer(q);
  if (!q.queue->TaskDone()) throw ValueError("task_done() called too many times");
}

bool LocalJoin(LocalQueue& q, const Deadline& deadline) {
  return WaitInSlices(q, deadline, [&](const Deadline& d) { return q.queue->Join(d); });
}

}  // namespace mp::internal
