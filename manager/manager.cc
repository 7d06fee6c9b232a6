#include "manager/manager.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/synchronization/notification.h"
#include "base/errors.h"
#include "base/scoped_fd.h"
#include "ipc/listener.h"
#include "manager/internal/accept_loop.h"
#include "manager/internal/server.h"
#include "process/process.h"

namespace mp {

// A server in this process (BaseManager(ManagerOptions)): the accept loop
// on a thread of its own, stopped through an eventfd.
struct BaseManager::LocalServer {
  std::unique_ptr<Listener> listener;
  std::shared_ptr<internal::Server> server = std::make_shared<internal::Server>();
  internal::ScopedFd stop{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  absl::Notification stopped;
  std::thread thread;
};

namespace {

constexpr int kServerStartTimeoutMs = 30'000;

std::string KeyOrDefault(const std::string& authkey) {
  return authkey.empty() ? current_process().authkey() : authkey;
}

}  // namespace

BaseManager::BaseManager(std::string address, std::string authkey)
    : address_(std::move(address)), authkey_(std::move(authkey)) {
  // Connect now, so a wrong address or key fails here rather than later.
  Client(address_, authkey_).close();
  internal::RegisterManagerKey(address_, authkey_);
}

BaseManager::BaseManager(ManagerOptions options) : authkey_(KeyOrDefault(options.authkey)) {
  local_ = std::make_unique<LocalServer>();
  if (!local_->stop.valid()) throw_errno("BaseManager: eventfd");
  local_->listener = std::make_unique<Listener>(options.address, authkey_);
  address_ = local_->listener->address();
  internal::RegisterManagerKey(address_, authkey_);
  LocalServer* local = local_.get();
  local_->thread = std::thread([local] {
    internal::ServeManager(*local->listener, local->server,
                           internal::ServeOptions{.owner = 0, .exit_on_shutdown = false, .stop_fd = local->stop.get()});
    local->stopped.Notify();
  });
}

BaseManager::~BaseManager() {
  try {
    if (local_) shutdown();
  } catch (...) {
  }
}

void BaseManager::serve_forever() {
  if (!local_) throw ValueError("BaseManager.serve_forever: this manager is a client (it has no server)");
  local_->stopped.WaitForNotification();
}

void BaseManager::shutdown() {
  if (!local_) {
    send_shutdown();
    return;
  }
  if (!local_->thread.joinable()) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(local_->stop.get(), &one, sizeof one);
  local_->thread.join();
  internal::ForgetManager(address_);
}

void BaseManager::send_shutdown() {
  try {
    internal::Call(address_, authkey_, internal::wire::Shutdown{});
  } catch (const Error&) {
    // Already gone.
  }
}

std::pair<internal::ObjectRef, uint64_t> BaseManager::create(internal::wire::Kind kind, const std::string& name,
                                                             std::string initial, int64_t parameter) {
  const internal::wire::PinnedId made =
      internal::Call(address_, authkey_, internal::wire::Create{kind, name, std::move(initial), parameter});
  return {internal::ObjectRef{address_, authkey_, made.id}, made.pin};
}

std::pair<internal::ObjectRef, uint64_t> BaseManager::create_custom(const std::string& type, std::string constructor,
                                                                    std::string arguments, const std::string& name) {
  const internal::wire::PinnedId made = internal::Call(
      address_, authkey_, internal::wire::CreateCustom{type, std::move(constructor), std::move(arguments), name});
  return {internal::ObjectRef{address_, authkey_, made.id}, made.pin};
}

std::pair<internal::ObjectRef, uint64_t> BaseManager::lookup(const std::string& name, const std::string& type) {
  const internal::wire::PinnedId found = internal::Call(address_, authkey_, internal::wire::Lookup{name, type});
  return {internal::ObjectRef{address_, authkey_, found.id}, found.pin};
}

long BaseManager::number_of_objects() {
  return static_cast<long>(internal::Call(address_, authkey_, internal::wire::NumberOfObjects{}));
}

Manager::Manager() : Manager(ManagerOptions{}) {}

namespace {

// What a manager's server started by spawn or forkserver is given.
struct SpawnedServerSetup {
  internal::ListenerParts listener;
  pid_t owner = 0;
  Connection ready;  // the write end of the owner's ready pipe
  template <class Archive>
  void serialize(Archive& ar) {
    ar(listener, owner, ready);
  }
};

int ServeSpawnedManager(SpawnedServerSetup setup) {
  Listener listener(std::move(setup.listener));
  // ServeManager closes the ready descriptor once it watches its owner.
  const int ready_fd = fcntl(setup.ready.fileno(), F_DUPFD_CLOEXEC, 0);
  setup.ready.close();
  return internal::ServeManager(
      listener, std::make_shared<internal::Server>(),
      internal::ServeOptions{.owner = setup.owner, .exit_on_shutdown = true, .ready_fd = ready_fd});
}

}  // namespace

Manager::Manager(ManagerOptions options) {
  authkey_ = KeyOrDefault(options.authkey);
  // No address: a Unix socket in a private 0700 directory (Listener("")),
  // which the server removes if its owner dies without shutting it down.
  // Listening before the server starts: no race between start and connect.
  listener_ = std::make_unique<Listener>(options.address, authkey_);
  address_ = listener_->address();
  internal::RegisterManagerKey(address_, authkey_);
  const pid_t owner = getpid();
  Listener* listener = listener_.get();
  // The server says when it watches its owner (before then, the owner's
  // death would kill it without its clean-up): Python's Manager.start()
  // waits for its server too.
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) throw_errno("Manager: pipe2");
  internal::ScopedFd ready_read(ready[0]);
  internal::ScopedFd ready_write(ready[1]);
  const int ready_fd = ready[1];
  const std::string method = options.start_method.empty() ? get_start_method() : options.start_method;
  if (method == "fork") {
    // A fork takes the listener along as it is.
    server_ = std::make_unique<Process>(
        ProcessOptions{.name = "SyncManager", .daemon = true, .start_method = "fork"}, [listener, owner, ready_fd] {
          return internal::ServeManager(
              *listener, std::make_shared<internal::Server>(),
              internal::ServeOptions{.owner = owner, .exit_on_shutdown = true, .ready_fd = ready_fd});
        });
  } else {
    // Spawn and forkserver: the listener and the ready pipe travel as
    // descriptors (the server code is the library's, found by name).
    server_ = std::make_unique<Process>(
        ProcessOptions{.name = "SyncManager", .daemon = true, .start_method = method}, &ServeSpawnedManager,
        SpawnedServerSetup{listener->parts(), owner,
                           Connection(internal::ScopedFd(fcntl(ready_fd, F_DUPFD_CLOEXEC, 0)), false, true, false)});
  }
  server_->start();
  ready_write.reset();
  listener_->close_socket();  // Only the server accepts.
  pollfd p{ready_read.get(), POLLIN, 0};
  char byte = 0;
  if (::poll(&p, 1, kServerStartTimeoutMs) != 1 || ::read(ready_read.get(), &byte, 1) != 1) {
    shutdown();
    throw ProcessError("Manager: the server process did not start");
  }
}

Manager::~Manager() {
  try {
    shutdown();
  } catch (...) {
  }
}

pid_t Manager::pid() const { return server_ ? server_->pid() : 0; }

void Manager::shutdown() {
  if (!server_) return;
  if (server_->is_alive()) {
    send_shutdown();
    if (!server_->join(std::chrono::seconds(5))) {
      server_->kill();
      server_->join();
    }
  } else {
    server_->join();
  }
  server_.reset();
  internal::ForgetManager(address_);
  listener_.reset();  // Removes the socket file (and its private directory).
}

mp::SharedMemory SharedMemoryManager::SharedMemory(size_t size) {
  mp::SharedMemory shm(mp::SharedMemory::create, size, "", /*track=*/false);
  try {
    track(shm.name());
  } catch (...) {
    shm.unlink();
    throw;
  }
  return shm;
}

void SharedMemoryManager::track(const std::string& name) {
  internal::Call(address_, authkey_, internal::wire::TrackSegment{"/" + name});
}

}  // namespace mp
