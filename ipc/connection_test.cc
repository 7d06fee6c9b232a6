#include "ipc/pipe.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;
using testing::ForkChild;
using testing::WaitChild;

TEST(Pipe, DuplexSendsTypedValuesBothWays) {
  auto a_b = Pipe();  // clang 14 cannot capture structured bindings
  auto& a = a_b.first;
  auto& b = a_b.second;
  pid_t pid = ForkChild([&] {
    auto v = b.recv<std::vector<int>>();
    b.send(std::string("sum=") + std::to_string(v[0] + v[1]));
    return 0;
  });
  a.send(std::vector<int>{20, 22});
  EXPECT_EQ(a.recv<std::string>(), "sum=42");
  EXPECT_EQ(WaitChild(pid), 0);
}

TEST(Pipe, SimplexHasOneReaderOneWriter) {
  auto [reader, writer] = Pipe(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_THROW(reader.send(1), Error);
  EXPECT_THROW(writer.recv<int>(), Error);
  writer.send(7);
  EXPECT_EQ(reader.recv<int>(), 7);
}

TEST(Pipe, EightMegabyteMessagesSurvivePartialIo) {
  for (bool duplex : {true, false}) {
    auto r_w = Pipe(duplex);  // clang 14 cannot capture structured bindings
    auto& r = r_w.first;
    auto& w = r_w.second;
    std::string big(8 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
    pid_t pid = ForkChild([&] {
      w.send_bytes(big);
      return 0;
    });
    EXPECT_EQ(r.recv_bytes(), big);
    EXPECT_EQ(WaitChild(pid), 0);
  }
}

// Sizes on both sides of every boundary of the duplex pipe's records (a
// first record of 4 KiB with the header, then records of 512 KiB), sent back
// to back before any is read: each message arrives whole and alone.
TEST(Pipe, MessagesOfEverySizeAroundTheRecordsArriveWhole) {
  const size_t sizes[] = {0,           1,           4091,          4092,      4093,
                          4096,        8191,        (512 << 10) - 1, 512 << 10, (512 << 10) + 4092,
                          (512 << 10) + 4093, 3 * (512 << 10) + 4097};
  auto message = [](size_t size) {
    std::string m(size, '\0');
    for (size_t i = 0; i < size; ++i) m[i] = static_cast<char>(i * 131 + size);
    return m;
  };
  for (bool duplex : {true, false}) {
    auto r_w = Pipe(duplex);  // clang 14 cannot capture structured bindings
    auto& r = r_w.first;
    auto& w = r_w.second;
    pid_t pid = ForkChild([&] {
      for (size_t size : sizes) w.send_bytes(message(size));
      return 0;
    });
    for (size_t size : sizes) EXPECT_EQ(r.recv_bytes(), message(size)) << "size " << size << " duplex " << duplex;
    EXPECT_EQ(WaitChild(pid), 0);
  }
}

// Where the system caps socket buffers low (Debian's default wmem_max is
// 208 KiB), records shrink to fit the send buffer: large messages still go.
TEST(Pipe, RecordsFitASmallSendBuffer) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
  for (int fd : fds) {
    const int small = 48 << 10;
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  }
  Connection a(internal::ScopedFd(fds[0]), true, true, true);
  Connection b(internal::ScopedFd(fds[1]), true, true, true);
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  pid_t pid = ForkChild([&] {
    a.send_bytes(big);
    a.send(std::string("after"));
    return 0;
  });
  a.close();  // A child that fails to send then ends the stream: EOF, no hang.
  EXPECT_EQ(b.recv_bytes(), big);
  EXPECT_EQ(b.recv<std::string>(), "after");
  EXPECT_EQ(WaitChild(pid), 0);
}

// Records that are not this framing's (written raw to the socket) are a
// clear error, and the messages after them still arrive.
TEST(Pipe, ForeignRecordsAreAClearErrorAndTheNextMessageArrives) {
  auto [a, b] = Pipe();
  const char claims_more[] = {100, 0, 0, 0, 'x', 'y'};  // says 100 bytes, holds 2
  ASSERT_EQ(::send(a.fileno(), claims_more, sizeof claims_more, 0), static_cast<ssize_t>(sizeof claims_more));
  EXPECT_THROW(b.recv_bytes(), Error);
  const std::string too_long(10000, 'z');  // longer than a first record may be
  ASSERT_EQ(::send(a.fileno(), too_long.data(), too_long.size(), 0), static_cast<ssize_t>(too_long.size()));
  EXPECT_THROW(b.recv_bytes(), Error);
  a.send(std::string("still fine"));
  EXPECT_EQ(b.recv<std::string>(), "still fine");
}

TEST(Pipe, EofAfterEverythingSentWasReceived) {
  auto [a, b] = Pipe();
  b.send(1);
  b.send(2);
  b.close();
  EXPECT_EQ(a.recv<int>(), 1);
  EXPECT_EQ(a.recv<int>(), 2);
  EXPECT_THROW(a.recv<int>(), EOFError);
}

TEST(Pipe, EofWhenChildExits) {
  auto reader_writer = Pipe(false);  // clang 14 cannot capture structured bindings
  auto& reader = reader_writer.first;
  auto& writer = reader_writer.second;
  pid_t pid = ForkChild([&] {
    writer.send(std::string("bye"));
    return 0;
  });
  writer.close();  // The parent's copy; the child's closes when it exits.
  EXPECT_EQ(reader.recv<std::string>(), "bye");
  EXPECT_THROW(reader.recv<std::string>(), EOFError);
  EXPECT_EQ(WaitChild(pid), 0);
}

TEST(Pipe, SendToClosedPeerThrowsInsteadOfSigpipe) {
  for (bool duplex : {true, false}) {
    auto [r, w] = Pipe(duplex);
    r.close();
    EXPECT_THROW(w.send(1), Error);
  }
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST(Pipe, WrongTypeIsAClearError) {
  auto [a, b] = Pipe();
  a.send(std::string("not an int vector, just text"));
  EXPECT_THROW(b.recv<std::vector<double>>(), Error);
}

TEST(Pipe, RandomBytesThroughRecvOnlyThrowMpError) {
  auto [a, b] = Pipe();
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 40, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    a.send_bytes(junk);
    try {
      b.recv<std::tuple<std::string, std::vector<int>, std::optional<double>>>();
    } catch (const Error&) {
    }
  }
}

TEST(Pipe, PollWithTimeout) {
  auto [a, b] = Pipe();
  EXPECT_FALSE(a.poll());
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(a.poll(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
  b.send(1);
  EXPECT_TRUE(a.poll(1s));
}

TEST(Wait, ReturnsTheReadyConnections) {
  auto [a1, b1] = Pipe();
  auto [a2, b2] = Pipe();
  EXPECT_TRUE(wait({&a1, &a2}, 10ms).empty());
  b2.send(5);
  auto ready = wait({&a1, &a2}, 1000ms);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0], &a2);
}

TEST(Connection, NoFdLeftAfterManyCycles) {
  const auto fds = testing::OpenFds();
  for (int i = 0; i < 1000; ++i) {
    auto [a, b] = Pipe(i % 2 == 0);
    b.send(i);
    EXPECT_EQ(a.recv<int>(), i);
  }
  EXPECT_EQ(testing::OpenFds(), fds);
}

}  // namespace
}  // namespace mp
