#include "manager/internal/accept_loop.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/logging.h"
#include "base/mutex.h"
#include "base/pidfd.h"
#include "base/scoped_fd.h"
#include "ipc/fd_passing.h"

namespace mp::internal {
namespace {

void UnlinkTrackedSegments(Server& server) {
  for (const std::string& name : server.TrackedSegments()) shm_unlink(name.c_str());
}

// What a client thread shares with the loop (owned jointly: threads may
// outlive the loop): the eventfd a Shutdown request signals, and the
// client sockets, which a loop that returns (in a program serving from a
// thread) shuts down so that its client threads end.
struct LoopState {
  ScopedFd shutdown_requested{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  bool exit_on_shutdown = true;
  Mutex mu;
  std::set<int> clients ABSL_GUARDED_BY(mu);
  bool finished ABSL_GUARDED_BY(mu) = false;
};

void ServeClient(std::shared_ptr<Server> shared_server, std::shared_ptr<LoopState> loop, Connection conn,
                 uint64_t conn_id) {
  Server& server = *shared_server;
  {
    MutexLock lock(loop->mu);
    if (loop->finished) return;
    loop->clients.insert(conn.fileno());
  }
  // A remote client that vanishes (its machine off the network) is noticed
  // within minutes and its locks released (ReleaseLocksOf below): TCP
  // keepalive after 60 s idle, 3 probes 10 s apart. (No-ops on Unix sockets.)
  const int on = 1, idle = 60, interval = 10, probes = 3;
  setsockopt(conn.fileno(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(conn.fileno(), IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
  for (;;) {
    wire::Request request;
    try {
      request = conn.recv<wire::Request>();
    } catch (const Error&) {
      break;  // Gone (or garbage): drop the client, keep serving the others.
    }
    if (std::holds_alternative<wire::Shutdown>(request.operation)) {
      try {
        conn.send(wire::Response{});
      } catch (const Error&) {
      }
      if (loop->exit_on_shutdown) {
        UnlinkTrackedSegments(server);
        std::fflush(nullptr);
        _exit(0);
      }
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(loop->shutdown_requested.get(), &one, sizeof one);
      continue;
    }
    int attach_fd = -1;
    wire::Response response = server.Dispatch(conn_id, conn.fileno(), request, &attach_fd);
    if (request.oneway) continue;
    try {
      conn.send(response);
      if (response.error == wire::ErrorCode::kNone && attach_fd >= 0) SendFd(conn.fileno(), attach_fd);
    } catch (const Error&) {
      break;
    }
  }
  internal::Log(DEBUG, [conn_id] { return "manager: client " + std::to_string(conn_id) + " gone"; });
  // A client that died holding a lock through a proxy must not block others.
  server.ReleaseLocksOf(conn_id);
  MutexLock lock(loop->mu);
  loop->clients.erase(conn.fileno());
}

}  // namespace

int ServeManager(Listener& listener, std::shared_ptr<Server> shared_server, const ServeOptions& options) {
  Server& server = *shared_server;
  auto loop = std::make_shared<LoopState>();
  loop->exit_on_shutdown = options.exit_on_shutdown;
  ScopedFd owner_fd(options.owner > 0 ? PidfdOpen(options.owner) : -1);
  // Watching the owner's pidfd, a forked server outlives it just long enough
  // to remove its socket file and directory: the daemon's death signal
  // (SIGKILL, which allows no clean-up) is not needed then.
  if (owner_fd.valid()) prctl(PR_SET_PDEATHSIG, 0);
  auto finish = [&] {
    listener.close();
    UnlinkTrackedSegments(server);
    MutexLock lock(loop->mu);
    loop->finished = true;
    for (int fd : loop->clients) ::shutdown(fd, SHUT_RDWR);  // their threads end
    return 0;
  };
  // The owner died before we watched it. (It is not always our parent: a
  // server started by the forkserver is the forkserver's child.)
  if (options.owner > 0) {
    pollfd gone{owner_fd.get(), POLLIN, 0};
    const bool died = owner_fd.valid() ? ::poll(&gone, 1, 0) == 1 : getppid() != options.owner;
    if (died) return finish();
  }
  internal::Log(INFO, [&] { return "manager serving at '" + listener.address() + "'"; });
  if (options.ready_fd >= 0) {
    const char ready = 1;
    [[maybe_unused]] ssize_t n = write(options.ready_fd, &ready, 1);
    ::close(options.ready_fd);
  }
  uint64_t next_conn = 1;
  // > 0 after accept() failed for want of descriptors or memory (EMFILE...):
  // the client waits in the backlog and the listener stays readable, so the
  // loop watches only the owner and the stop signals for this long (10 ms
  // doubling to 1 s, reset by the next accept) instead of spinning.
  std::chrono::milliseconds pause{0};
  for (;;) {
    pollfd polls[4] = {{pause.count() > 0 ? -1 : listener.fileno(), POLLIN, 0},
                       {owner_fd.get(), POLLIN, 0},
                       {options.stop_fd, POLLIN, 0},
                       {loop->shutdown_requested.get(), POLLIN, 0}};
    const int n = ::poll(polls, 4, pause.count() > 0 ? static_cast<int>(pause.count()) : -1);
    if (n < 0) continue;  // EINTR
    // The owner gone without shutting us down (its socket file and private
    // directory are ours to remove), or a stop.
    if (polls[1].revents || polls[2].revents || polls[3].revents) return finish();
    if (pause.count() == 0 && !polls[0].revents) continue;
    const std::chrono::milliseconds paused = std::exchange(pause, std::chrono::milliseconds(0));
    try {
      // Only what is ready: a handshake under way must not keep the loop
      // from its owner and stop signals.
      std::optional<Connection> accepted = listener.accept(std::chrono::milliseconds(0));
      if (!accepted) continue;
      Connection conn = std::move(*accepted);
      // A thread that cannot be had refuses this client (its connection is
      // closed with the thread's arguments); the server lives.
      std::thread(ServeClient, shared_server, loop, std::move(conn), next_conn++).detach();
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
