// The echo server of 004 练习 3/4 in three designs, chosen with --mode:
//   per-connection  the document's: one process per client (bounded by
//                   --max_clients, which the document's lacks);
//   prefork         --workers processes accept on the shared listening
//                   socket, each serving one connection at a time;
//   prefork-async   --workers processes each run a Boost.Asio event loop
//                   serving many connections (the nginx model).
// In every mode a dead worker is replaced, SIGINT/SIGTERM stop accepting,
// let open connections finish (up to --drain_ms) and reap every child, idle
// connections are closed after --idle_ms, clients that stop reading after
// --send_timeout_ms, reads are bounded (64 KiB), and a client that
// half-closes or resets disturbs no one else. Out of descriptors (EMFILE),
// accepting backs off instead of spinning; a fork that fails (EAGAIN)
// refuses that one client, or retries the worker later, and the server
// goes on.
// --port=0 picks a free port; the first line of stdout is "PORT <n>".
#include <signal.h>
#include <time.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "apps/echo_server/echo.h"
#include "gflags/gflags.h"
#include "ipc/connection.h"
#include "process/process.h"

DEFINE_string(mode, "prefork-async", "per-connection, prefork or prefork-async");
DEFINE_int32(port, 8080, "TCP port on 127.0.0.1 (0: a free one, printed as PORT <n>)");
DEFINE_int32(workers, 0, "worker processes for the prefork modes (default: cpu_count())");
DEFINE_int32(max_clients, 256, "per-connection mode: most connections served at once");
DEFINE_int32(idle_ms, 30000, "close a connection idle this long");
DEFINE_int32(send_timeout_ms, 10000, "drop a client that takes nothing we send for this long");
DEFINE_int32(drain_ms, 2000, "on SIGINT/SIGTERM, let open connections finish this long");

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

echo::Timeouts Timeouts() {
  return {std::chrono::milliseconds(FLAGS_idle_ms), std::chrono::milliseconds(FLAGS_send_timeout_ms)};
}

// Children start with the default signal handling the parent blocked.
void UnblockSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

volatile sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }

// prefork: accept, serve that one client, repeat; SIGTERM ends the loop.
int PreforkWorker(int listen_fd) {
  UnblockSignals();
  struct sigaction sa {};
  sa.sa_handler = OnStop;  // No SA_RESTART: a blocked accept() returns EINTR.
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  echo::AcceptBackoff backoff;
  while (!g_stop) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors: wait (a signal cuts it short); else EINTR (maybe
      // stopping), or a client gone before accept.
      if (echo::AcceptBackoff::IsResourceError(errno)) {
        const timespec pause{0, backoff.Next().count() * 1'000'000};
        nanosleep(&pause, nullptr);
      }
      continue;
    }
    backoff.Reset();
    echo::ServeBlocking(fd, Timeouts());
  }
  return 0;
}

// prefork-async: one event loop serving many connections.
int AsyncWorker(int listen_fd) {
  UnblockSignals();
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::v4(), ::dup(listen_fd));
  echo::AcceptBackoff backoff;
  asio::steady_timer pause(io);
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec && echo::AcceptBackoff::IsResourceError(ec.value())) {
        // Out of descriptors: accept again once some may have been freed.
        pause.expires_after(backoff.Next());
        pause.async_wait([&](const boost::system::error_code& pec) {
          if (!pec) accept_next();
        });
        return;
      }
      if (!ec) {
        backoff.Reset();
        echo::StartAsyncSession(std::move(socket), Timeouts());
      }
      accept_next();
    });
  };
  accept_next();
  asio::signal_set signals(io, SIGTERM, SIGINT);
  asio::steady_timer drain(io);
  signals.async_wait([&](const boost::system::error_code&, int) {
    boost::system::error_code ignored;
    acceptor.close(ignored);  // Stop accepting; open sessions finish...
    pause.cancel();
    drain.expires_after(std::chrono::milliseconds(FLAGS_drain_ms));
    drain.async_wait([&](const boost::system::error_code&) { io.stop(); });  // ...or are cut.
  });
  io.run();
  return 0;
}

int ServeOneConnection(int fd) {
  UnblockSignals();
  echo::ServeBlocking(fd, Timeouts());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "multi-process echo server (004 练习 3/4)");
  if (FLAGS_mode != "per-connection" && FLAGS_mode != "prefork" && FLAGS_mode != "prefork-async") {
    std::fprintf(stderr, "server: unknown --mode '%s'\n", FLAGS_mode.c_str());
    return 2;
  }
  // The parent handles SIGINT/SIGTERM through a signalfd, in its wait loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

  asio::io_context io;
  tcp::acceptor acceptor = echo::Listen(io, FLAGS_port);
  const int listen_fd = acceptor.native_handle();
  std::printf("PORT %d\n", acceptor.local_endpoint().port());
  std::fflush(stdout);

  const int workers = FLAGS_workers > 0 ? FLAGS_workers : mp::cpu_count();
  const bool per_connection = FLAGS_mode == "per-connection";
  auto worker_target = FLAGS_mode == "prefork" ? PreforkWorker : AsyncWorker;
  std::map<int, std::unique_ptr<mp::Process>> children;  // sentinel -> child
  // start: false when the fork failed (EAGAIN, out of memory): the server
  // goes on without that child.
  auto start = [&](auto target, int arg) {
    auto p = std::make_unique<mp::Process>(mp::ProcessOptions{.daemon = true}, target, arg);
    int sentinel;
    try {
      p->start();
      sentinel = p->sentinel();  // may need a descriptor too
    } catch (const mp::Error& e) {
      std::fprintf(stderr, "server: could not start a process: %s\n", e.what());
      if (p->pid() > 0) {  // started, but not to be watched: ended now
        p->kill();
        p->join();
      }
      return false;
    }
    children[sentinel] = std::move(p);
    return true;
  };
  using Clock = std::chrono::steady_clock;
  int missing_workers = 0;           // prefork: workers to (re)start
  Clock::time_point retry_at;        // ...not before this
  echo::AcceptBackoff start_backoff;  // between failed worker starts
  echo::AcceptBackoff accept_backoff;
  Clock::time_point accept_at;  // per-connection: no accept before this (EMFILE)
  if (!per_connection) missing_workers = workers;

  bool stopping = false;
  while (!stopping) {
    const Clock::time_point now = Clock::now();
    while (missing_workers > 0 && now >= retry_at) {
      if (start(worker_target, listen_fd)) {
        --missing_workers;
        start_backoff.Reset();
      } else {
        retry_at = now + start_backoff.Next();
      }
    }
    std::vector<int> fds{signal_fd};
    const bool accepting = per_connection && static_cast<int>(children.size()) < FLAGS_max_clients &&
                           now >= accept_at;
    if (accepting) fds.push_back(listen_fd);
    for (const auto& [sentinel, _] : children) fds.push_back(sentinel);
    // Wake up for a pending retry (a worker to start, accepting to resume).
    std::optional<std::chrono::milliseconds> timeout;
    auto wake_at = [&](Clock::time_point at) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(at - now);
      timeout = std::max(std::chrono::milliseconds(0), timeout ? std::min(*timeout, left) : left);
    };
    if (missing_workers > 0) wake_at(retry_at);
    if (per_connection && now < accept_at) wake_at(accept_at);
    for (int fd : mp::wait(fds, timeout)) {
      if (fd == signal_fd) {
        stopping = true;
      } else if (fd == listen_fd) {
        const int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) {
          if (echo::AcceptBackoff::IsResourceError(errno)) accept_at = Clock::now() + accept_backoff.Next();
          continue;
        }
        if (start(ServeOneConnection, conn)) {
          accept_backoff.Reset();
        } else {
          // Refused (the fork failed, or it had no descriptor left): accept
          // again after a pause, not at once into the same failure.
          accept_at = Clock::now() + accept_backoff.Next();
        }
        ::close(conn);  // The child has its own copy.
      } else {
        auto it = children.find(fd);
        if (it == children.end()) continue;
        std::unique_ptr<mp::Process> ended = std::move(it->second);
        children.erase(it);
        ended->join();
        if (!per_connection) {  // A worker died: replace it.
          std::fprintf(stderr, "server: worker %d ended (exit code %d); starting another\n", ended->pid(),
                       ended->exitcode().value_or(-1));
          ++missing_workers;
        }
      }
    }
  }

  // Drain: no new connections; open ones get --drain_ms to finish.
  acceptor.close();
  for (auto& [_, child] : children) {
    if (!per_connection) child->terminate();  // Workers stop accepting and drain.
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(FLAGS_drain_ms + 1000);
  for (auto& [_, child] : children) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!child->join(std::max(left, std::chrono::milliseconds(0)))) {
      child->kill();
      child->join();
    }
  }
  std::fprintf(stderr, "server: stopped, %zu children reaped\n", children.size());
  return 0;
}
