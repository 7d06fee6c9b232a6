// End-to-end tests of the echo servers on loopback, each on a free port.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/run_binary.h"
#include "tests/test_util.h"

namespace {

using mp::testing::RunBinary;

// A server process with its port, stopped (SIGTERM) and reaped at the end.
// What the server's process is limited to (0: as the test's).
struct Limits {
  rlim_t open_files = 0;  // RLIMIT_NOFILE
  // Run as `nobody` with at most this many processes of that user
  // (RLIMIT_NPROC binds only unprivileged users), from a copy of the
  // binary that user can reach.
  rlim_t processes = 0;
};

// A copy of the server binary in a directory anyone can read (the test's
// runfiles may be under a private home); removed at the end of the test.
class ReachableCopy {
 public:
  explicit ReachableCopy(const std::string& binary) {
    char dir[] = "/tmp/mp-echo-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    chmod(dir, 0755);
    path_ = dir_ + "/server";
    std::ifstream in(binary, std::ios::binary);
    std::ofstream(path_, std::ios::binary) << in.rdbuf();
    chmod(path_.c_str(), 0755);
  }
  ~ReachableCopy() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

// How many processes run as `uid` now.
int ProcessesOf(uid_t uid) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    struct stat st {};
    if (std::isdigit(entry.path().filename().string()[0]) && stat(entry.path().c_str(), &st) == 0 &&
        st.st_uid == uid) {
      ++n;
    }
  }
  return n;
}

class Server {
 public:
  explicit Server(std::vector<std::string> args, Limits limits = {}) {
    std::string binary = "apps/echo_server/server";
    if (limits.processes > 0) {
      copy_ = std::make_unique<ReachableCopy>(binary);
      binary = copy_->path();
    }
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    args.insert(args.begin(), binary);
    args.push_back("--port=0");
    args.push_back("--drain_ms=300");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      if (limits.open_files > 0) {
        const rlimit files{limits.open_files, limits.open_files};
        if (setrlimit(RLIMIT_NOFILE, &files) != 0) _exit(126);
      }
      if (limits.processes > 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(125);
        const rlimit procs{limits.processes, limits.processes};
        if (setrlimit(RLIMIT_NPROC, &procs) != 0) _exit(124);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    pollfd p{out[0], POLLIN, 0};
    while (poll(&p, 1, 10000) == 1 && read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    sscanf(line.c_str(), "PORT %d", &port_);
  }
  ~Server() {
    if (pid_ > 0) Stop();
  }
  int Stop() {
    kill(pid_, SIGTERM);
    const int code = mp::testing::WaitChild(pid_, std::chrono::seconds(20));
    pid_ = -1;
    return code;
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::set<pid_t> Children() const {
    std::set<pid_t> out;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
    for (pid_t p; in >> p;) out.insert(p);
    return out;
  }

 private:
  std::unique_ptr<ReachableCopy> copy_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// CPU time the server and its children have used so far.
std::chrono::milliseconds CpuTime(const Server& server) {
  std::chrono::milliseconds total = mp::testing::CpuTime(server.pid());
  for (pid_t child : server.Children()) total += mp::testing::CpuTime(child);
  return total;
}

// Whether `fd` is answered with "ABC" for "abc" within a few seconds.
bool Echoes(int fd) {
  if (fd < 0 || send(fd, "abc", 3, MSG_NOSIGNAL) != 3) return false;
  char buf[3];
  return recv(fd, buf, 3, MSG_WAITALL) == 3 && std::string(buf, 3) == "ABC";
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Whether a new client is served within about five seconds: one try every
// 100 ms, while the server recovers (no event tells when it has).
bool ServedWithinFiveSeconds(int port) {
  for (int i = 0; i < 50; ++i) {
    const int fd = Connect(port);
    const bool served = Echoes(fd);
    if (fd >= 0) close(fd);
    if (served) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string Loadgen(int port, std::vector<std::string> extra) {
  extra.push_back("--port=" + std::to_string(port));
  auto r = RunBinary("apps/echo_server/loadgen", extra, "", std::chrono::seconds(60));
  return r.out;
}

long Field(const std::string& report, const std::string& name) {
  const auto at = report.find(name + "=");
  return at == std::string::npos ? -1 : std::stol(report.substr(at + name.size() + 1));
}

class EchoServer : public ::testing::TestWithParam<std::string> {};

TEST_P(EchoServer, RepliesCorrectlyTo200ConcurrentClients) {
  Server server({"--mode=" + GetParam(), "--workers=2", "--max_clients=300"});
  ASSERT_GT(server.port(), 0);
  const std::string report = Loadgen(server.port(), {"--connections=200", "--requests=5"});
  EXPECT_EQ(Field(report, "requests"), 1000) << report;
  EXPECT_EQ(Field(report, "failures"), 0) << report;
  const std::string shorts = Loadgen(server.port(), {"--connections=4", "--requests=20", "--short_connections"});
  EXPECT_EQ(Field(shorts, "failures"), 0) << shorts;
  EXPECT_EQ(server.Stop(), 0);
}

TEST_P(EchoServer, OneMebibyteWithoutNewlines) {
  Server server({"--mode=" + GetParam(), "--workers=2"});
  const int fd = Connect(server.port());
  ASSERT_GE(fd, 0);
  std::string data(1 << 20, 'a');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  });
  std::string got;
  char buf[65536];
  while (got.size() < data.size()) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  writer.join();
  close(fd);
  for (char& c : data) c = static_cast<char>(c - 'a' + 'A');
  EXPECT_EQ(got, data);
}

TEST_P(EchoServer, SilentClientIsDroppedAfterIdleTimeoutAndBlocksNoOne) {
  Server server({"--mode=" + GetParam(), "--workers=2", "--idle_ms=300"});
  const int silent = Connect(server.port());
  ASSERT_GE(silent, 0);
  // Others are served meanwhile (in prefork, by the other worker).
  const std::string report = Loadgen(server.port(), {"--connections=1", "--requests=20"});
  EXPECT_EQ(Field(report, "failures"), 0) << report;
  char c;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(recv(silent, &c, 1, 0), 0);  // Closed by the server.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  close(silent);
}

TEST_P(EchoServer, ClientThatStopsReadingIsDroppedAndBlocksNoOne) {
  Server server({"--mode=" + GetParam(), "--workers=2", "--send_timeout_ms=300"});
  const int stalled = Connect(server.port());
  ASSERT_GE(stalled, 0);
  int small = 4096;
  setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  // Send without ever reading until the server's answers fill every buffer
  // on the way back and its send blocks; it must then drop us.
  const std::string chunk(64 * 1024, 'x');
  bool dropped = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!dropped && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = send(stalled, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) dropped = true;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{stalled, POLLOUT, 0};
      poll(&p, 1, 50);  // our buffer is full too: wait for room or the reset
      if (p.revents & (POLLERR | POLLHUP)) dropped = true;
    }
  }
  EXPECT_TRUE(dropped) << "a client that reads nothing is still connected after 15 s";
  close(stalled);
  const std::string report = Loadgen(server.port(), {"--connections=2", "--requests=20"});
  EXPECT_EQ(Field(report, "failures"), 0) << report;
}

TEST_P(EchoServer, HalfClosedAndResetClientsDisturbNoOne) {
  Server server({"--mode=" + GetParam(), "--workers=2"});
  const int half = Connect(server.port());
  send(half, "abc", 3, 0);
  shutdown(half, SHUT_WR);
  char buf[8];
  EXPECT_EQ(recv(half, buf, sizeof buf, MSG_WAITALL), 3);
  EXPECT_EQ(std::string(buf, 3), "ABC");
  close(half);
  const int reset = Connect(server.port());
  linger l{1, 0};
  setsockopt(reset, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  send(reset, "xyz", 3, 0);
  close(reset);  // RST
  const std::string report = Loadgen(server.port(), {"--connections=4", "--requests=50"});
  EXPECT_EQ(Field(report, "failures"), 0) << report;
}

TEST_P(EchoServer, StopsCleanlyReapingEveryChild) {
  Server server({"--mode=" + GetParam(), "--workers=2"});
  const int idle = Connect(server.port());
  ASSERT_GE(idle, 0);
  send(idle, "a", 1, 0);
  char c;
  recv(idle, &c, 1, 0);
  const std::set<pid_t> children = server.Children();
  EXPECT_FALSE(children.empty());
  EXPECT_EQ(server.Stop(), 0);
  for (pid_t child : children) EXPECT_NE(kill(child, 0), 0) << "child " << child << " outlived the server";
  close(idle);
}

INSTANTIATE_TEST_SUITE_P(Modes, EchoServer, ::testing::Values("per-connection", "prefork", "prefork-async"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

TEST(EchoServerWorkers, KilledWorkerIsReplacedAndOthersKeepTheirConnections) {
  Server server({"--mode=prefork-async", "--workers=2"});
  // Long-lived connections spread over both workers, then one worker dies.
  std::string report;
  std::thread load([&] { report = Loadgen(server.port(), {"--connections=16", "--requests=3000"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Let the load start: no event marks it.
  const std::set<pid_t> before = server.Children();
  ASSERT_EQ(before.size(), 2u);
  kill(*before.begin(), SIGKILL);
  load.join();
  // Only the dead worker's connections broke, each once (the load generator
  // then reconnects, to the surviving or the replacement worker). Which
  // worker accepted how many connections is up to the kernel, so all 16 may
  // have been on the one killed.
  const long failures = Field(report, "failures");
  EXPECT_LE(failures, 16) << report;
  EXPECT_EQ(Field(report, "requests") + failures, 16 * 3000) << report;
  // A replacement serves new clients.
  std::set<pid_t> after;
  for (int i = 0; i < 200 && after.size() != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = server.Children();
  }
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(after.count(*before.begin()), 0u);
  const std::string again = Loadgen(server.port(), {"--connections=8", "--requests=20"});
  EXPECT_EQ(Field(again, "failures"), 0) << again;
}

// Out of descriptors (EMFILE), accepting backs off instead of spinning,
// and serves again once descriptors are free.
class EchoServerOutOfFiles : public ::testing::TestWithParam<std::string> {};

TEST_P(EchoServerOutOfFiles, BacksOffAndRecovers) {
  Server server({"--mode=" + GetParam(), "--workers=1", "--max_clients=200"}, Limits{.open_files = 40});
  ASSERT_GT(server.port(), 0);
  std::vector<int> clients;
  for (int i = 0; i < 60; ++i) clients.push_back(Connect(server.port()));  // queued if not accepted
  // Served clients answer; once the server is out of descriptors the rest
  // wait in the queue. Its CPU time must then stand still.
  ASSERT_TRUE(Echoes(clients[0]));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // reach the steady state: no event marks it
  const auto before = CpuTime(server);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto used = CpuTime(server) - before;
  EXPECT_LT(used, std::chrono::milliseconds(300)) << "the server spins while out of descriptors";
  for (int fd : clients) close(fd);
  // Descriptors free again: new clients are served (after the backoff, and
  // once the queued, now closed, clients are through; one accepted at the
  // very edge of the limit may be refused).
  EXPECT_TRUE(ServedWithinFiveSeconds(server.port()));
  EXPECT_EQ(kill(server.pid(), 0), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, EchoServerOutOfFiles, ::testing::Values("per-connection", "prefork-async"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

// A fork that fails (RLIMIT_NPROC reached) refuses that one client; the
// server lives and serves the next once a process is free.
TEST(PerConnection, FailedForkRefusesOneClientAndTheServerGoesOn) {
  const int others = ProcessesOf(65534);
  Server server({"--mode=per-connection", "--max_clients=10"},
                Limits{.processes = static_cast<rlim_t>(others + 3)});  // the server and 2 children
  ASSERT_GT(server.port(), 0) << "the server did not start as nobody";
  const int first = Connect(server.port());
  const int second = Connect(server.port());
  ASSERT_TRUE(Echoes(first));
  ASSERT_TRUE(Echoes(second));
  const int refused = Connect(server.port());
  ASSERT_GE(refused, 0);
  char c;
  EXPECT_LE(recv(refused, &c, 1, 0), 0);  // closed at once (or reset), not served
  close(refused);
  EXPECT_EQ(kill(server.pid(), 0), 0) << "the server died of a failed fork";
  close(first);
  // The first child ends and frees its process; then a new client is served.
  EXPECT_TRUE(ServedWithinFiveSeconds(server.port()));
  close(second);
}

TEST(PerConnection, TheDocumentsServerAndClient) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    execl("apps/echo_server/per_connection", "per_connection", "--port=0", nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  int port = 0;
  sscanf(line.c_str(), "PORT %d", &port);
  auto r = RunBinary("apps/echo_server/client", {"--port=" + std::to_string(port)}, "hello\nmulti process\n");
  EXPECT_EQ(r.out, "HELLO\nMULTI PROCESS\n");
  kill(pid, SIGKILL);
  mp::testing::WaitChild(pid);
  close(out[0]);
}

}  // namespace
