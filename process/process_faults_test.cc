// Process under threads and pid reuse (issue 19): daemons started from
// short-lived threads, forks of multi-threaded processes, zombies, and
// signals that must never reach a process that reused a child's pid.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/connection.h"
#include "process/process.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using mp::testing::ForkChild;
using mp::testing::WaitChild;
using mp::testing::WaitUntil;

int ReturnSum(int a, int b) { return a + b; }
int ReturnNow() { return 0; }
int PauseForever() {
  pause();
  return 0;
}

// ---- 1. Daemons started from short-lived threads ----

TEST(ProcessFaults, DaemonStartedFromAShortLivedThreadLivesOn) {
  Event release;
  Process p(ProcessOptions{.daemon = true}, [release]() mutable { return release.wait(20s) ? 7 : 1; });
  std::thread([&] { p.start(); }).join();
  // PR_SET_PDEATHSIG, armed in the child, fires the moment the forking
  // thread ends: had it been that thread, the child would be dead by now.
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(p.is_alive());
  release.set();
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 7);
}

TEST(ProcessFaults, DaemonStartedFromAThreadStillDiesWithItsParent) {
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  const pid_t parent = ForkChild([&] {
    Process daemon(ProcessOptions{.daemon = true}, [] { pause(); });
    std::thread([&] { daemon.start(); }).join();
    w.send(static_cast<int>(daemon.pid()));
    pause();
    return 0;
  });
  const pid_t daemon_pid = r.recv<int>();
  ::kill(parent, SIGKILL);
  EXPECT_EQ(WaitChild(parent), -SIGKILL);
  EXPECT_TRUE(WaitUntil([daemon_pid] { return mp::testing::ProcessEnded(daemon_pid); }));
}

TEST(ProcessFaults, ForkserverStartedFromAShortLivedThreadServesLaterStarts) {
  // The first forkserver start of this test program makes the server.
  Process first(ProcessOptions{.start_method = "forkserver"}, ReturnSum, 1, 2);
  std::thread([&] { first.start(); }).join();
  ASSERT_TRUE(first.join(30s));
  EXPECT_EQ(first.exitcode(), 3);
  Process second(ProcessOptions{.start_method = "forkserver"}, ReturnSum, 2, 3);
  second.start();
  ASSERT_TRUE(second.join(30s));
  EXPECT_EQ(second.exitcode(), 5);
}

// ---- 2. Forks of a multi-threaded process ----

// Runs three forks in a fresh child whose stderr is a pipe: one before a
// thread exists, two while one runs. Returns what the child printed.
std::string StderrOfForksWithAThread(const std::function<void()>& setup) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t child = ForkChild([&] {
    ::close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    setup();
    Process before([] {});
    before.start();
    before.join();
    std::atomic<bool> stop{false};
    std::thread busy([&] {
      while (!stop.load()) std::this_thread::sleep_for(1ms);
    });
    for (int i = 0; i < 2; ++i) {
      Process during([] {});
      during.start();
      during.join();
    }
    stop.store(true);
    busy.join();
    return 0;
  });
  ::close(fds[1]);
  std::string out = mp::testing::ReadAllAndClose(fds[0]);
  EXPECT_EQ(WaitChild(child), 0);
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ProcessFaults, ForkOfAMultiThreadedProcessWarnsOnce) {
  const std::string err = StderrOfForksWithAThread([] {});
  EXPECT_EQ(Count(err, "is multi-threaded, use of fork() may lead to deadlocks"), 1u) << err;
  EXPECT_NE(err.find("mp::set_start_method(\"forkserver\")"), std::string::npos) << err;
}

TEST(ProcessFaults, ForkWarningCanBeTurnedOff) {
  EXPECT_EQ(StderrOfForksWithAThread([] { set_fork_warning(false); }), "");
  EXPECT_EQ(StderrOfForksWithAThread([] { setenv("MP_NO_FORK_WARNING", "1", 1); }), "");
}

// ---- 12. start() reaps children that were never joined ----

TEST(ProcessFaults, StartReapsChildrenThatWereNeverJoined) {
  std::vector<Process> never_joined;
  for (int i = 0; i < 50; ++i) {
    never_joined.emplace_back([] {});
    never_joined.back().start();
  }
  std::vector<pid_t> pids;
  for (auto& p : never_joined) pids.push_back(p.pid());
  // Each start reaps what ended before it; wait until all 50 have ended.
  for (pid_t pid : pids) {
    ASSERT_TRUE(WaitUntil([pid] { return mp::testing::ProcessEnded(pid); }));
  }
  Process next([] {});
  next.start();
  const auto zombies = mp::testing::ZombieChildren();
  for (pid_t pid : pids) EXPECT_EQ(zombies.count(pid), 0u) << pid << " is still a zombie";
  ASSERT_TRUE(next.join(20s));
  for (auto& p : never_joined) EXPECT_EQ(p.exitcode(), 0);
}

// ---- 13. Signals never reach a reused pid ----

// SetNextPid makes the next process of this pid namespace get `pid`, if
// this process may (/proc/sys/kernel/ns_last_pid, CAP_SYS_ADMIN).
bool SetNextPid(pid_t pid) {
  std::ofstream last("/proc/sys/kernel/ns_last_pid");
  last << (pid - 1);
  last.flush();
  return static_cast<bool>(last);
}

// ForkImpostor forks a process of ours that pauses, with pid `pid` if it can
// be had; returns its pid or -1.
pid_t ForkImpostor(pid_t pid) {
  if (!SetNextPid(pid)) return -1;
  const pid_t impostor = fork();
  if (impostor == 0) {
    pause();
    _exit(0);
  }
  if (impostor == pid) return impostor;
  ::kill(impostor, SIGKILL);
  waitpid(impostor, nullptr, 0);
  return -1;
}

// Whether `impostor` took a signal: after the library's kill() and
// terminate() returned, a signal sent would be pending; give it time to land.
bool SurvivesSignals(pid_t impostor) {
  std::this_thread::sleep_for(50ms);
  const bool alive = waitpid(impostor, nullptr, WNOHANG) == 0;
  ::kill(impostor, SIGKILL);
  waitpid(impostor, nullptr, 0);
  return alive;
}

TEST(ProcessFaults, SignalsNeverReachAProcessThatReusedAForkChildsPid) {
  Process p([] {});
  p.start();
  const pid_t pid = p.pid();
  // Reaped behind the library's back, as a program's own waitpid(-1) would.
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  const pid_t impostor = ForkImpostor(pid);
  if (impostor < 0) GTEST_SKIP() << "cannot choose the next pid here (ns_last_pid)";
  p.terminate();
  p.kill();
  EXPECT_TRUE(SurvivesSignals(impostor));
}

TEST(ProcessFaults, SignalsNeverReachAProcessThatReusedAForkserverChildsPid) {
  Process p(ProcessOptions{.start_method = "forkserver"}, ReturnNow);
  p.start();
  const pid_t pid = p.pid();
  // The server reaps its children: once the exit code came, the pid is free.
  ASSERT_TRUE(WaitUntil([&] { return mp::testing::ProcessEnded(pid); }, 20s));
  pollfd ready{p.sentinel(), POLLIN, 0};
  ASSERT_EQ(poll(&ready, 1, 20000), 1);
  const pid_t impostor = ForkImpostor(pid);
  if (impostor < 0) GTEST_SKIP() << "cannot choose the next pid here (ns_last_pid)";
  p.terminate();
  p.kill();
  EXPECT_TRUE(SurvivesSignals(impostor));
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ProcessFaults, ForkserverChildIsSignalledThroughItsPidfd) {
  Process p(ProcessOptions{.start_method = "forkserver"}, PauseForever);
  p.start();
  p.terminate();
  ASSERT_TRUE(p.join(20s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

}  // namespace
}  // namespace mp
