#include "manager/manager.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "base/mutex.h"
#include "base/pidfd.h"
#include "ipc/byte_queue.h"
#include "ipc/fd_passing.h"
#include "manager/manager_server.h"

namespace mp {
namespace internal {
namespace {

// One connection per (process, thread, manager address). A forked child
// opens its own: sharing its parent's socket would interleave messages.
struct ConnectionCache {
  pid_t pid = 0;
  std::unordered_map<std::string, Connection> connections;
};

thread_local ConnectionCache tls_cache;

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

[[noreturn]] void ThrowRemote(const Response& r) {
  const std::string& t = r.error_type;
  if (t == "KeyError") throw KeyError(r.message);
  if (t == "Empty") throw Empty(r.message);
  if (t == "Full") throw Full(r.message);
  if (t == "ValueError") throw ValueError(r.message);
  if (t == "BrokenBarrierError") throw BrokenBarrierError(r.message);
  throw Error(r.message);
}

}  // namespace

struct LocalQueue {
  std::shared_ptr<ByteQueue> queue;
  ScopedFd server;  // pidfd of the manager's server
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
    Connection& conn = ConnectionTo(ref.address, ref.authkey);
    Request r;
    r.object = ref.id;
    r.op = Op::kQueueAttach;
    conn.send(r);
    Response response = conn.recv<Response>();
    if (!response.ok) return nullptr;
    const int fd = RecvFd(conn.fileno());
    auto local = std::make_shared<LocalQueue>();
    local->queue = ByteQueue::Attach(fd);
    const pid_t server = static_cast<pid_t>(decode<int64_t>(response.payload));
    local->server.reset(internal::PidfdOpen(server));
    if (!local->server.valid()) return nullptr;
    return local;
  } catch (const Error&) {
    Forget(ref.address);
    return nullptr;
  }
}

// A shared-memory queue cannot see its server die; the calls check its pidfd.
void CheckServer(LocalQueue& q) {
  if (internal::PidfdEnded(q.server.get())) throw Error("manager is unreachable (shut down or dead)");
}

// Blocking calls wait in slices, checking the server between them, so that
// a dead manager gives an error instead of a wait forever.
constexpr auto kLivenessSlice = std::chrono::milliseconds(250);

template <class Attempt>
bool WaitInSlices(LocalQueue& q, const Deadline& deadline, Attempt attempt) {
  for (;;) {
    CheckServer(q);
    Deadline slice = Clock::now() + kLivenessSlice;
    if (deadline && *deadline < *slice) slice = deadline;
    if (attempt(slice)) return true;
    if (deadline && Clock::now() >= *deadline) return false;
  }
}

}  // namespace

// ForgetLocalQueues drops this process's attachments to the queues of the
// manager at `address` (their memfd mappings and the server's pidfd), once
// that manager is shut down: a program that makes managers one after the
// other keeps no descriptor of the old ones.
void ForgetLocalQueues(const std::string& address) {
  const std::string prefix = address + "#";
  std::vector<std::shared_ptr<LocalQueue>> dropped;  // released after the lock
  MutexLock lock(g_local_mu);
  for (auto it = g_local->lower_bound(prefix); it != g_local->end() && it->first.starts_with(prefix);) {
    dropped.push_back(std::move(it->second));
    it = g_local->erase(it);
  }
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

std::string Call(const std::string& address, const std::string& authkey, Request request) {
  Response response;
  try {
    Connection& conn = ConnectionTo(address, authkey);
    conn.send(request);
    if (request.oneway) return {};
    response = conn.recv<Response>();
  } catch (const AuthenticationError&) {
    Forget(address);
    throw;
  } catch (const Error& e) {
    Forget(address);
    throw Error("manager at " + address + " is unreachable (shut down?): " + e.what());
  }
  if (!response.ok) ThrowRemote(response);
  return std::move(response.payload);
}

}  // namespace internal

BaseManager::BaseManager(std::string address, std::string authkey)
    : address_(std::move(address)), authkey_(std::move(authkey)) {
  // Connect now, so a wrong address or key fails here rather than later.
  Client(address_, authkey_).close();
}

internal::ObjectRef BaseManager::create(internal::Kind kind, const std::string& name,
                                        std::string initial, int64_t parameter) {
  internal::Request r;
  r.op = internal::Op::kCreate;
  r.kind = kind;
  r.a = name;
  r.b = std::move(initial);
  r.n = parameter;
  const uint64_t id = decode<uint64_t>(internal::Call(address_, authkey_, std::move(r)));
  return internal::ObjectRef{address_, authkey_, id};
}

namespace {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw Error("Manager: RAND_bytes failed");
  }
  return absl::BytesToHexString(raw);
}

}  // namespace

Manager::Manager() : Manager(ManagerOptions{}) {}

Manager::Manager(ManagerOptions options) {
  authkey_ = options.authkey.empty() ? RandomHex(32) : options.authkey;
  // No address: a Unix socket in a private 0700 directory (Listener("")),
  // which the server removes if its owner dies without shutting it down.
  // Listening before the server starts: no race between start and connect.
  listener_ = std::make_unique<Listener>(options.address, authkey_);
  address_ = listener_->address();
  const pid_t owner = getpid();
  Listener* listener = listener_.get();
  // Forked whatever the default start method: the server runs library code
  // only (none of the program's), from the long-lived starter thread, and
  // takes its listener with it, which spawn could not pass.
  server_ = std::make_unique<Process>(
      ProcessOptions{.name = "SyncManager", .daemon = true, .start_method = "fork"},
                                      [listener, owner] { return internal::ServeManager(*listener, owner); });
  server_->start();
  listener_->close_socket();  // Only the server accepts.
}

Manager::~Manager() {
  try {
    shutdown();
  } catch (...) {
  }
}

void Manager::shutdown() {
  if (!server_) return;
  if (server_->is_alive()) {
    try {
      internal::Request r;
      r.op = internal::Op::kShutdown;
      internal::Call(address_, authkey_, r);
    } catch (const Error&) {
    }
    if (!server_->join(std::chrono::seconds(5))) {
      server_->kill();
      server_->join();
    }
  } else {
    server_->join();
  }
  server_.reset();
  internal::Forget(address_);
  internal::ForgetLocalQueues(address_);
  listener_.reset();  // Removes the socket file (and its private directory).
}

}  // namespace mp
