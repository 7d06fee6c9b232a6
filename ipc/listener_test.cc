// Listener and Client against hostile and silent peers, and against Python's
// multiprocessing.connection (issue 20): bounded allocation, handshake
// deadlines, key mismatches in both directions, and the wire format.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/listener.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using mp::testing::ForkChild;
using mp::testing::WaitChild;

// A stream socket pair framed as Listener connections are.
std::pair<Connection, int> StreamPair() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {Connection(internal::ScopedFd(fds[0]), true, true, true, /*python_framing=*/true), fds[1]};
}

TEST(Listener, UnixSocketWithAuthkey) {
  // Unix socket paths are limited to 108 bytes; the test tmpdir is longer.
  const std::string path = "/tmp/mp_listener_test_" + std::to_string(getpid()) + ".sock";
  {
    Listener listener(path, "secret");
    std::thread client([&] {
      Connection c = Client(path, "secret");
      c.send(std::string("ping"));
      EXPECT_EQ(c.recv<std::string>(), "pong");
    });
    Connection server = listener.accept();
    EXPECT_EQ(server.recv<std::string>(), "ping");
    server.send(std::string("pong"));
    client.join();
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // Socket file removed.
}

TEST(Listener, TcpWrongAuthkeyIsRefusedBeforeAnyData) {
  Listener listener("127.0.0.1:0", "right");
  EXPECT_NE(listener.address(), "127.0.0.1:0");
  std::thread client([&] { EXPECT_THROW(Client(listener.address(), "wrong"), AuthenticationError); });
  EXPECT_THROW(listener.accept(), AuthenticationError);
  client.join();
  std::thread good([&] { Client(listener.address(), "right").send(1); });
  EXPECT_EQ(listener.accept().recv<int>(), 1);
  good.join();
}

TEST(Listener, NoFdLeftAfterManyCycles) {
  const auto fds = testing::OpenFds();
  for (int i = 0; i < 50; ++i) {
    Listener listener("127.0.0.1:0", "key");
    std::thread client([&] { Client(listener.address(), "key").send(i); });
    EXPECT_EQ(listener.accept().recv<int>(), i);
    client.join();
  }
  EXPECT_EQ(testing::OpenFds(), fds);
}

TEST(ListenerFraming, LengthsAreBigEndianAsPythonSendsThem) {
  auto [conn, raw] = StreamPair();
  conn.send_bytes("abc");
  unsigned char header[4];
  ASSERT_EQ(::read(raw, header, 4), 4);
  EXPECT_EQ(header[0], 0);
  EXPECT_EQ(header[3], 3);
  const unsigned char reply[] = {0, 0, 0, 2, 'o', 'k'};
  ASSERT_EQ(::write(raw, reply, sizeof reply), static_cast<ssize_t>(sizeof reply));
  EXPECT_EQ(conn.recv_bytes(), "ok");
  ::close(raw);
}

// A header that claims far more than the peer sends: with the memory of the
// process capped, receiving must fail with mp::Error (the peer closed in the
// middle), not std::bad_alloc or a kill, and close the connection.
TEST(ListenerFraming, HugeClaimedLengthAllocatesOnlyWhatArrives) {
  const pid_t child = ForkChild([] {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // (Not under a sanitizer: its shadow memory takes terabytes of address
    // space. There the test still checks the error, without the cap.)
    const rlimit cap{512u << 20, 512u << 20};
    if (setrlimit(RLIMIT_AS, &cap) != 0) return 10;
#endif
    auto [conn, raw] = StreamPair();
    conn.set_max_message_size(SIZE_MAX);
    const unsigned char claim[] = {0x7f, 0xff, 0xff, 0xf0, 'x', 'y', 'z'};  // ~2 GiB
    if (::write(raw, claim, sizeof claim) != static_cast<ssize_t>(sizeof claim)) return 11;
    ::close(raw);
    try {
      conn.recv_bytes();
      return 12;
    } catch (const Error&) {
    } catch (...) {
      return 13;
    }
    return conn.closed() ? 0 : 14;
  });
  EXPECT_EQ(WaitChild(child, 20s), 0);
}

TEST(ListenerFraming, MessageOverTheMaximumClosesTheConnection) {
  auto [conn, raw] = StreamPair();
  conn.set_max_message_size(1000);
  const unsigned char claim[] = {0, 0, 0x10, 0};  // 4096 bytes
  ASSERT_EQ(::write(raw, claim, sizeof claim), 4);
  try {
    conn.recv_bytes();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("longer than maxlength"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(conn.closed());
  ::close(raw);
}

TEST(ListenerFraming, LongFormBeyondTwoGiBIsPythonsMinusOneAndEightBytes) {
  auto [conn, raw] = StreamPair();
  const unsigned char header[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'};
  ASSERT_EQ(::write(raw, header, sizeof header), static_cast<ssize_t>(sizeof header));
  EXPECT_EQ(conn.recv_bytes(), "abc");
  ::close(raw);
}

// ---- Handshake deadlines and key mismatches ----

int ConnectRaw(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

TEST(ListenerHandshake, SilentClientFailsWithinTheDeadline) {
  Listener listener("127.0.0.1:0", "key", 16, {.handshake_timeout = 300ms});
  const int silent = ConnectRaw(listener.address());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(listener.accept(), AuthenticationError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::close(silent);
}

TEST(ListenerHandshake, SilentClientDoesNotDelayTheNextOne) {
  Listener listener("127.0.0.1:0", "key", 16, {.handshake_timeout = 2s});
  const int silent = ConnectRaw(listener.address());
  std::thread client([&] {
    Connection conn = Client(listener.address(), "key");
    conn.send_bytes("first through");
  });
  const auto start = std::chrono::steady_clock::now();
  Connection conn = listener.accept();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(conn.recv_bytes(), "first through");
  EXPECT_EQ(listener.last_accepted().rfind("127.0.0.1:", 0), 0u) << listener.last_accepted();
  client.join();
  // The silent one fails once its deadline passes.
  EXPECT_THROW(listener.accept(), AuthenticationError);
  ::close(silent);
}

// A poll loop around accept() (the manager's, the MPI pool's) must see every
// client: one whose handshake finished while accept() returned another keeps
// fileno() readable.
TEST(ListenerHandshake, FilenoStaysReadableForHandshakesThatFinishedMeanwhile) {
  Listener listener("127.0.0.1:0", "key");
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] { Client(listener.address(), "key").send_bytes("x"); });
  }
  for (int i = 0; i < 4; ++i) {
    pollfd ready{listener.fileno(), POLLIN, 0};
    ASSERT_EQ(::poll(&ready, 1, 10000), 1) << "client " << i << " was never announced";
    EXPECT_EQ(listener.accept().recv_bytes(), "x");
  }
  for (auto& t : clients) t.join();
}

TEST(ListenerHandshake, ClientOfASilentServerFailsWithinTheDeadline) {
  Listener listener("127.0.0.1:0");  // no key: it never speaks first
  std::thread server([&] {
    Connection conn = listener.accept();
    conn.poll(10s);  // Says nothing until the client gives up.
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(Client(listener.address(), "key", {.handshake_timeout = 300ms}), AuthenticationError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  server.join();
}

TEST(ListenerHandshake, WrongKeyFailsOnBothSides) {
  Listener listener("127.0.0.1:0", "right");
  std::thread server([&] { EXPECT_THROW(listener.accept(), AuthenticationError); });
  EXPECT_THROW(Client(listener.address(), "wrong"), AuthenticationError);
  server.join();
}

// A key on one side only: both sides get mp::AuthenticationError, the
// keyed side in its handshake (within the deadline), the other at its first
// receive.
TEST(ListenerHandshake, KeyOnTheServerOnlyFailsOnBothSides) {
  Listener listener("127.0.0.1:0", "key", 128, {.handshake_timeout = 2s});
  std::thread server([&] { EXPECT_THROW(listener.accept(), AuthenticationError); });
  Connection conn = Client(listener.address());  // no key: no handshake of its own
  EXPECT_THROW(conn.recv_bytes(), AuthenticationError);  // the challenge
  EXPECT_TRUE(conn.closed());
  server.join();
}

TEST(ListenerHandshake, KeyOnTheClientOnlyFailsOnBothSides) {
  Listener listener("127.0.0.1:0");  // no key
  std::thread client([&] {
    EXPECT_THROW(Client(listener.address(), "key", {.handshake_timeout = 300ms}), AuthenticationError);
  });
  Connection conn = listener.accept();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(conn.recv_bytes(), AuthenticationError);  // the client's #FAILURE#
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  client.join();
}

TEST(ListenerHandshake, KeylessConnectionsPassOrdinaryFirstMessages) {
  Listener listener("127.0.0.1:0");
  std::thread client([&] {
    Connection c = Client(listener.address());
    c.send_bytes("#CHALLENGE# is only refused from a server");
    EXPECT_EQ(c.recv_bytes(), "#FAILURE# too, from a client");
  });
  Connection conn = listener.accept();
  EXPECT_EQ(conn.recv_bytes(), "#CHALLENGE# is only refused from a server");
  conn.send_bytes("#FAILURE# too, from a client");
  client.join();
}

TEST(ListenerHandshake, RightKeyConnects) {
  Listener listener("127.0.0.1:0", "right");
  std::thread server([&] {
    Connection conn = listener.accept();
    conn.send_bytes(conn.recv_bytes() + "!");
  });
  Connection conn = Client(listener.address(), "right");
  conn.send_bytes("hi");
  EXPECT_EQ(conn.recv_bytes(), "hi!");
  server.join();
}

// ---- Connection completeness (Python 3.3+) ----

TEST(ConnectionPassing, AConnectionSentOverAConnectionReachesTheSamePeer) {
  auto [a, b] = Pipe();
  const pid_t child = ForkChild([&b = b] {
    // Made after this child was forked: it holds no copy of `c` but the one sent.
    Connection x = b.recv<Connection>();
    x.send_bytes("through the passed connection");
    return x.recv_bytes() == "and back" ? 0 : 1;
  });
  auto [c, d] = Pipe();
  a.send(c);
  c.close();
  EXPECT_EQ(d.recv_bytes(), "through the passed connection");
  d.send_bytes("and back");
  EXPECT_EQ(WaitChild(child), 0);
}

TEST(ConnectionPassing, WaitTakesConnectionsAndDescriptorsTogether) {
  auto [a, b] = Pipe();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = ForkChild([] { return 0; });
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));  // a process sentinel
  ASSERT_GE(pidfd, 0);
  auto ready = wait({&a, fds[0], pidfd}, 10s);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].fd(), pidfd);
  EXPECT_EQ(ready[0].connection(), nullptr);
  b.send_bytes("x");
  ASSERT_EQ(::write(fds[1], "y", 1), 1);
  ready = wait({&a, fds[0], pidfd}, 10s);
  ASSERT_EQ(ready.size(), 3u);
  EXPECT_EQ(ready[0].connection(), &a);
  EXPECT_EQ(ready[1].fd(), fds[0]);
  EXPECT_EQ(WaitChild(child), 0);
  ::close(pidfd);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ConnectionPassing, RecvBytesIntoAndBufferTooShort) {
  auto [a, b] = Pipe();
  a.send_bytes("0123456789", 2, 5);
  char buf[8] = {};
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf, sizeof buf), 1), 5u);
  EXPECT_EQ(std::string(buf + 1, 5), "23456");
  a.send_bytes("a message too long");
  try {
    b.recv_bytes_into(std::span<char>(buf, sizeof buf));
    FAIL() << "no BufferTooShort";
  } catch (const BufferTooShort& e) {
    EXPECT_EQ(e.bytes(), "a message too long");
  }
  a.send_bytes("next");  // the connection goes on
  EXPECT_EQ(b.recv_bytes(), "next");
  EXPECT_THROW(a.send_bytes("abc", 4), ValueError);
  EXPECT_THROW(a.send_bytes("abc", 1, 3), ValueError);
}

TEST(ConnectionPassing, ListenerWithoutAnAddressUsesAPrivateDirectory) {
  std::string dir;
  {
    Listener listener;
    const std::string address = listener.address();
    dir = address.substr(0, address.rfind('/'));
    struct stat st {};
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    std::thread client([&] { Client(address).send_bytes("hi"); });
    EXPECT_EQ(listener.accept().recv_bytes(), "hi");
    EXPECT_EQ(listener.last_accepted(), "");
    client.join();
  }
  struct stat st {};
  EXPECT_NE(stat(dir.c_str(), &st), 0) << dir << " is left behind";
}

TEST(ConnectionPassing, AnEmptyAddressWithAKeyIsAPrivateSocketToo) {
  std::string dir;
  {
    Listener listener("", "key");
    const std::string address = listener.address();
    dir = address.substr(0, address.rfind('/'));
    std::thread bad([&] { EXPECT_THROW(Client(address, "wrong"), AuthenticationError); });
    EXPECT_THROW(listener.accept(), AuthenticationError);
    bad.join();
    std::thread good([&] { Client(address, "key").send_bytes("hi"); });
    EXPECT_EQ(listener.accept().recv_bytes(), "hi");
    good.join();
  }
  struct stat st {};
  EXPECT_NE(stat(dir.c_str(), &st), 0) << dir << " is left behind";
}

// ---- Python interoperability (the machine's python3) ----

// RunPython runs `script` with python3 and returns its exit code and what it
// printed; the child is bounded by `timeout`.
std::pair<int, std::string> RunPython(const std::string& script,
                                      std::chrono::milliseconds timeout = 30s) {
  int out[2];
  EXPECT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    execlp("python3", "python3", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(out[1]);
  std::string printed = mp::testing::ReadAllAndClose(out[0]);
  return {WaitChild(pid, timeout), printed};
}

std::string Port(const std::string& address) { return address.substr(address.rfind(':') + 1); }

TEST(PythonInterop, PythonClientTalksToAnMpListener) {
  Listener listener("127.0.0.1:0", "secret");
  std::thread server([&] {
    Connection conn = listener.accept();
    EXPECT_EQ(conn.recv_bytes(), "hello from python");
    conn.send_bytes("hello from C++");
  });
  auto [code, printed] = RunPython(
      "from multiprocessing.connection import Client\n"
      "c = Client(('127.0.0.1', " + Port(listener.address()) + "), authkey=b'secret')\n"
      "c.send_bytes(b'hello from python')\n"
      "print(c.recv_bytes().decode())\n");
  server.join();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(printed, "hello from C++\n");
}

TEST(PythonInterop, MpClientTalksToAPythonListener) {
  int ports[2];
  ASSERT_EQ(pipe(ports), 0);
  // The Python listener prints its port on a pipe of its own (fd 3).
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(ports[1], 3);
    execlp("python3", "python3", "-c",
           "import os\n"
           "from multiprocessing.connection import Listener\n"
           "l = Listener(('127.0.0.1', 0), authkey=b'secret')\n"
           "os.write(3, b'%d\\n' % l.address[1])\n"
           "c = l.accept()\n"
           "c.send_bytes(c.recv_bytes() + b' back')\n"
           "try:\n"
           "    l.accept()\n"
           "except Exception as e:\n"
           "    os.write(3, type(e).__name__.encode() + b'\\n')\n",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(ports[1]);
  std::string line;
  char ch;
  while (::read(ports[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ASSERT_FALSE(line.empty());
  {
    Connection conn = Client("127.0.0.1:" + line, "secret");
    conn.send_bytes("there and");
    EXPECT_EQ(conn.recv_bytes(), "there and back");
  }
  EXPECT_THROW(Client("127.0.0.1:" + line, "wrong"), AuthenticationError);
  std::string refused;
  while (::read(ports[0], &ch, 1) == 1 && ch != '\n') refused += ch;
  ::close(ports[0]);
  EXPECT_EQ(refused, "AuthenticationError");
  EXPECT_EQ(WaitChild(pid, 30s), 0);
}

TEST(PythonInterop, PythonClientWithAWrongKeyIsRefusedOnBothSides) {
  Listener listener("127.0.0.1:0", "secret");
  std::thread server([&] { EXPECT_THROW(listener.accept(), AuthenticationError); });
  auto [code, printed] = RunPython(
      "from multiprocessing.connection import Client\n"
      "from multiprocessing import AuthenticationError\n"
      "try:\n"
      "    Client(('127.0.0.1', " + Port(listener.address()) + "), authkey=b'wrong')\n"
      "except AuthenticationError:\n"
      "    print('refused')\n");
  server.join();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(printed, "refused\n");
}

}  // namespace
}  // namespace mp
