#include "process/process.h"

#include "process/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "ipc/pipe.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

int ReturnSum(int a, int b) { return a + b; }

void ReportIdentity(Connection conn) {
  conn.send(std::make_tuple(current_process().name(), parent_process().has_value()
                                                          ? parent_process()->name()
                                                          : std::string("none")));
}

// Reads everything from fd until EOF.
std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Waits for an unrelated pid to end (pidfd poll), bounded.
bool PidEnds(pid_t pid, int timeout_ms) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  const bool ended = poll(&p, 1, timeout_ms) == 1;
  close(fd);
  return ended;
}

TEST(Process, TargetReturnBecomesExitCode) {
  Process p(ReturnSum, 2, 3);
  EXPECT_FALSE(p.exitcode().has_value());
  EXPECT_EQ(p.pid(), 0);
  p.start();
  EXPECT_GT(p.pid(), 0);
  p.join();
  EXPECT_EQ(p.exitcode(), 5);
  EXPECT_FALSE(p.is_alive());
}

TEST(Process, ClosuresAndVoidTargetsInForkMode) {
  int captured = 41;
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  Process p([captured, w]() mutable { w.send(captured + 1); });
  p.start();
  EXPECT_EQ(r.recv<int>(), 42);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

class ClockProcess : public Process {
 public:
  explicit ClockProcess(Connection conn) : conn_(std::move(conn)) {}
  void run() override { conn_.send(std::string("ran in ") + current_process().name()); }

 private:
  Connection conn_;
};

TEST(Process, SubclassStyleRunsRun) {
  auto [r, w] = Pipe();
  ClockProcess p(w);
  p.start();
  EXPECT_EQ(r.recv<std::string>(), "ran in " + p.name());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ExitCodesAfterSignals) {
  for (int sig : {SIGTERM, SIGKILL, SIGINT}) {
    Event started;
    Process p([&] {
      started.set();
      pause();
    });
    p.start();
    ASSERT_TRUE(started.wait(10s));
    if (sig == SIGTERM) p.terminate();
    if (sig == SIGKILL) p.kill();
    if (sig == SIGINT) p.interrupt();
    ASSERT_TRUE(p.join(10s));
    EXPECT_EQ(p.exitcode(), -sig);
  }
}

TEST(Process, EscapedExceptionPrintsAndExitsOne) {
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  const int saved = dup(2);
  dup2(err[1], 2);
  Process p(ProcessOptions{.name = "boom"}, [] { throw ValueError("bad value 7"); });
  p.start();
  dup2(saved, 2);
  close(saved);
  close(err[1]);
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  const std::string text = Drain(err[0]);
  close(err[0]);
  EXPECT_NE(text.find("Process boom:"), std::string::npos) << text;
  EXPECT_NE(text.find("mp::ValueError: bad value 7"), std::string::npos) << text;
}

TEST(Process, NamesCountFromOneAndChildSeesItsOwnName) {
  Process a([] {});
  Process b([] {});
  const int na = std::stoi(a.name().substr(a.name().find('-') + 1));
  EXPECT_EQ(b.name(), "Process-" + std::to_string(na + 1));
  b.set_name("renamed");
  auto [r, w] = Pipe();
  Process c(ReportIdentity, w);
  c.start();
  auto [child_name, parent_name] = r.recv<std::tuple<std::string, std::string>>();
  EXPECT_EQ(child_name, c.name());
  EXPECT_EQ(parent_name, "MainProcess");
  c.join();
  EXPECT_EQ(current_process().name(), "MainProcess");
  EXPECT_FALSE(parent_process().has_value());
}

TEST(Process, MisuseThrowsProcessError) {
  Process p([] {});
  EXPECT_THROW(p.join(), ProcessError);
  EXPECT_THROW(p.terminate(), ProcessError);
  p.start();
  EXPECT_THROW(p.start(), ProcessError);
  EXPECT_THROW(p.set_daemon(true), ProcessError);
  p.join();
  p.close();
  EXPECT_THROW(p.start(), ProcessError);
  EXPECT_THROW(p.is_alive(), ProcessError);
  EXPECT_THROW(p.pid(), ProcessError);
  EXPECT_THROW(Process(ProcessOptions{.start_method = "teleport"}), ValueError);
}

TEST(Process, CloseWhileRunningIsValueError) {
  Event go;
  Process p([&] { go.wait(10s); });
  p.start();
  EXPECT_THROW(p.close(), ValueError);
  go.set();
  p.join();
  p.close();
}

void StartGrandchild(Connection conn) {
  Process grandchild(ReportIdentity, conn);
  grandchild.start();
  grandchild.join();
}

TEST(Process, GrandchildIsNamedAfterItsParent) {
  auto [r, w] = Pipe();
  Process child(StartGrandchild, w);
  child.start();
  auto [name, parent_name] = r.recv<std::tuple<std::string, std::string>>();
  EXPECT_EQ(name, child.name() + ":1");  // Python: Process-3's first child is Process-3:1
  EXPECT_EQ(parent_name, child.name());
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(Process, ChildDoesNotInheritItsParentsChildren) {
  Event go;
  Process sleeper([&] { go.wait(10s); });
  sleeper.start();
  auto [r, w] = Pipe();
  Process child([w = w]() mutable { w.send(static_cast<int>(active_children().size())); });
  child.start();
  EXPECT_EQ(r.recv<int>(), 0);
  child.join();
  go.set();
  sleeper.join();
  EXPECT_EQ(sleeper.exitcode(), 0);
}

TEST(Process, JoinAndIsAliveFromTwoThreadsAgreeOnTheExitCode) {
  for (int round = 0; round < 20; ++round) {
    Process p([] { return 7; });
    p.start();
    std::thread poller([&] {
      while (p.is_alive()) {
      }
    });
    p.join();
    poller.join();
    ASSERT_EQ(p.exitcode(), 7);
    EXPECT_THROW(p.sentinel(), ProcessError);  // reaped
  }
}

TEST(Process, JoinTimeoutAndSentinel) {
  Event go;
  Process p([&] { go.wait(10s); });
  p.start();
  EXPECT_TRUE(p.is_alive());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);
  EXPECT_TRUE(wait(std::vector<int>{p.sentinel()}, 10ms).empty());
  go.set();
  EXPECT_EQ(wait(std::vector<int>{p.sentinel()}, 10000ms).size(), 1u);
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ActiveChildrenListsAndReaps) {
  Event go;
  Process p(ProcessOptions{.name = "sleeper"}, [&] { go.wait(10s); });
  p.start();
  bool found = false;
  for (const auto& c : active_children()) found |= c.name() == "sleeper" && c.pid() == p.pid();
  EXPECT_TRUE(found);
  go.set();
  p.join();
  for (const auto& c : active_children()) EXPECT_NE(c.pid(), p.pid());
}

TEST(Process, ManyStartsLeaveNoFdOrZombie) {
  const auto fds = testing::OpenFds();
  for (int i = 0; i < 200; ++i) {
    Process p([] { return 3; });
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), 3);
  }
  active_children();
  EXPECT_EQ(testing::OpenFds(), fds);
  EXPECT_TRUE(testing::ChildPids().empty());
}

TEST(Process, DaemonCannotHaveChildren) {
  Process p(ProcessOptions{.daemon = true}, [] {
    try {
      Process inner([] {});
      inner.start();
    } catch (const ProcessError&) {
      return 7;
    }
    return 0;
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
}

TEST(Process, DaemonDiesWhenParentIsKilled) {
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  pid_t parent = testing::ForkChild([&] {
    Process daemon(ProcessOptions{.daemon = true}, [] { pause(); });
    daemon.start();
    w.send(static_cast<int>(daemon.pid()));
    pause();
    return 0;
  });
  const pid_t daemon_pid = r.recv<int>();
  kill(parent, SIGKILL);
  EXPECT_EQ(testing::WaitChild(parent), -SIGKILL);
  EXPECT_TRUE(PidEnds(daemon_pid, 10000));
}

TEST(Process, NormalExitTerminatesDaemonsAndJoinsOthers) {
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  pid_t parent = testing::ForkChild([&] {
    Process daemon(ProcessOptions{.daemon = true}, [] { pause(); });
    daemon.start();
    Process worker([w]() mutable {
      std::this_thread::sleep_for(100ms);  // Outlive the parent's main().
      w.send(std::string("worker done"));
    });
    worker.start();
    w.send(static_cast<int>(daemon.pid()));
    std::exit(0);  // Runs the exit handler, as returning from main() would.
    return 0;
  });
  const pid_t daemon_pid = r.recv<int>();
  EXPECT_EQ(r.recv<std::string>(), "worker done");
  EXPECT_EQ(testing::WaitChild(parent), 0);
  EXPECT_TRUE(PidEnds(daemon_pid, 10000));
}

TEST(Process, ChildFlushesItsOutputAndNeverRepeatsTheParents) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t helper = testing::ForkChild([&] {
    dup2(out[1], 1);
    close(out[0]);
    std::cout << "A";  // Buffered in the parent when the child forks.
    Process p([] { std::cout << "B"; });
    p.start();
    p.join();
    std::cout << "C" << std::flush;
    return 0;
  });
  close(out[1]);
  EXPECT_EQ(Drain(out[0]), "ABC");
  close(out[0]);
  EXPECT_EQ(testing::WaitChild(helper), 0);
}

// At its end a child flushes every C stream it wrote to, inherited or its
// own; and its stdin is /dev/null, as in Python.
TEST(Process, ChildFlushesCStreamsItWroteAndReadsEofOnStdin) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  FILE* inherited = fdopen(out[1], "w");
  ASSERT_NE(inherited, nullptr);
  Process p([&] {
    std::fputs("[inherited]", inherited);
    FILE* own = fdopen(dup(out[1]), "w");
    std::fputs("[own]", own);  // never closed
    char c;
    std::fputs(::read(0, &c, 1) == 0 ? "[eof]" : "[not eof]", inherited);
  });
  p.start();
  ASSERT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), 0);
  std::fclose(inherited);  // its buffer is empty here: nothing written twice
  const std::string got = Drain(out[0]);
  close(out[0]);
  EXPECT_NE(got.find("[inherited][eof]"), std::string::npos) << got;
  EXPECT_NE(got.find("[own]"), std::string::npos) << got;
  EXPECT_EQ(got.size(), std::string("[inherited][eof][own]").size()) << got;
}

TEST(Process, CpuCountFollowsAffinity) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(cpu_count(), CPU_COUNT(&set));
}

class StartMethods : public ::testing::TestWithParam<std::string> {};

TEST_P(StartMethods, RunsPlainFunctionWithArguments) {
  Process p(ProcessOptions{.start_method = GetParam()}, ReturnSum, 20, 22);
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 42);
}

TEST_P(StartMethods, ChildKnowsItsNameAndParent) {
  auto [r, w] = Pipe();
  Process p(ProcessOptions{.name = "named", .start_method = GetParam()}, +[](int code) { return code; }, 9);
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 9);
}

TEST_P(StartMethods, SignalsAndSentinel) {
  Process p(ProcessOptions{.start_method = GetParam()}, +[] { pause(); });
  p.start();
  EXPECT_FALSE(p.join(100ms));
  p.terminate();
  EXPECT_EQ(wait(std::vector<int>{p.sentinel()}, 30000ms).size(), 1u);
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST_P(StartMethods, ClosureTargetsAreRefusedAtStart) {
  if (GetParam() == "fork") GTEST_SKIP();
  int local = 1;
  Process p(ProcessOptions{.start_method = GetParam()}, [local] { return local; });
  EXPECT_THROW(p.start(), ProcessError);
}

INSTANTIATE_TEST_SUITE_P(All, StartMethods, ::testing::Values("fork", "spawn", "forkserver"));

TEST(Process, TypedSpawnTagAcceptsPlainFunctions) {
  Process p(mp::spawn, ReturnSum, 1, 1);
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 2);
}

TEST(Launcher, StartsChildrenFromItsSingleThreadedHelper) {
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  Launcher launcher([w](int arg) mutable {
    w.send(current_process().name());
    if (arg == 99) pause();
    return arg;
  });
  // Threads started after the launcher do not matter to its children.
  std::thread busy([] { std::this_thread::sleep_for(10ms); });
  Process a = launcher.start({.name = "Worker-A", .daemon = true}, 5);
  EXPECT_EQ(r.recv<std::string>(), "Worker-A");
  ASSERT_TRUE(a.join(10s));
  EXPECT_EQ(a.exitcode(), 5);
  Process b = launcher.start({.name = "Worker-B", .daemon = true}, 99);
  EXPECT_EQ(r.recv<std::string>(), "Worker-B");
  bool listed = false;
  for (const auto& c : active_children()) listed |= c.pid() == b.pid();
  EXPECT_TRUE(listed);
  b.kill();
  EXPECT_EQ(wait(std::vector<int>{b.sentinel()}, 10000ms).size(), 1u);
  ASSERT_TRUE(b.join(10s));
  EXPECT_EQ(b.exitcode(), -SIGKILL);
  busy.join();
}

TEST(Context, DefaultsAndValidation) {
  EXPECT_EQ(get_start_method(), "fork");
  EXPECT_EQ(get_context("spawn").name(), "spawn");
  EXPECT_THROW(get_context("nope"), ValueError);
  EXPECT_EQ(get_all_start_methods().front(), "fork");
}

}  // namespace
}  // namespace mp
