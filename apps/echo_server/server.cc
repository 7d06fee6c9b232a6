// The echo server of 004 练习 3/4 in three designs, chosen with --mode:
//   per-connection  the document's: one process per client (bounded by
//                   --max_clients, which the document's lacks);
//   prefork         --workers processes accept on the shared listening
//                   socket, each serving one connection at a time;
//   prefork-async   --workers processes each run a Boost.Asio event loop
//                   serving many connections (the nginx model).
// In every mode a dead worker is replaced, SIGINT/SIGTERM stop accepting,
// let open connections finish (up to --drain_ms) and reap every child, idle
// connections are closed after --idle_ms, reads are bounded (64 KiB), and a
// client that half-closes or resets disturbs no one else.
// --port=0 picks a free port; the first line of stdout is "PORT <n>".
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <map>
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
DEFINE_int32(drain_ms, 2000, "on SIGINT/SIGTERM, let open connections finish this long");

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::chrono::milliseconds Idle() { return std::chrono::milliseconds(FLAGS_idle_ms); }

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
  while (!g_stop) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // EINTR (maybe stopping), or a client gone before accept.
    echo::ServeBlocking(fd, Idle());
  }
  return 0;
}

// prefork-async: one event loop serving many connections.
int AsyncWorker(int listen_fd) {
  UnblockSignals();
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::v4(), ::dup(listen_fd));
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) echo::StartAsyncSession(std::move(socket), Idle());
      accept_next();
    });
  };
  accept_next();
  asio::signal_set signals(io, SIGTERM, SIGINT);
  asio::steady_timer drain(io);
  signals.async_wait([&](const boost::system::error_code&, int) {
    boost::system::error_code ignored;
    acceptor.close(ignored);  // Stop accepting; open sessions finish...
    drain.expires_after(std::chrono::milliseconds(FLAGS_drain_ms));
    drain.async_wait([&](const boost::system::error_code&) { io.stop(); });  // ...or are cut.
  });
  io.run();
  return 0;
}

int ServeOneConnection(int fd) {
  UnblockSignals();
  echo::ServeBlocking(fd, Idle());
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
  std::map<int, std::unique_ptr<mp::Process>> children;  // sentinel -> child
  auto start = [&](auto target, int arg) {
    auto p = std::make_unique<mp::Process>(mp::ProcessOptions{.daemon = true}, target, arg);
    p->start();
    const int sentinel = p->sentinel();
    children[sentinel] = std::move(p);
  };
  const bool per_connection = FLAGS_mode == "per-connection";
  if (!per_connection) {
    for (int i = 0; i < workers; ++i) start(FLAGS_mode == "prefork" ? PreforkWorker : AsyncWorker, listen_fd);
  }

  bool stopping = false;
  while (!stopping) {
    std::vector<int> fds{signal_fd};
    const bool accepting = per_connection && static_cast<int>(children.size()) < FLAGS_max_clients;
    if (accepting) fds.push_back(listen_fd);
    for (const auto& [sentinel, _] : children) fds.push_back(sentinel);
    for (int fd : mp::wait(fds)) {
      if (fd == signal_fd) {
        stopping = true;
      } else if (fd == listen_fd) {
        const int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) continue;
        start(ServeOneConnection, conn);
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
          start(FLAGS_mode == "prefork" ? PreforkWorker : AsyncWorker, listen_fd);
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
