// Fuzzes Python's authkey handshake on both sides: the peer's bytes (framed
// or not, any challenge, digest name or answer) make DeliverChallenge and
// AnswerChallenge succeed or throw an mp::Error, within the deadline, never
// crash or throw anything else. A peer that stops early is an EOF, not a
// wait: its side of the socket is shut before the handshake starts.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "base/deadline.h"
#include "base/errors.h"
#include "base/scoped_fd.h"
#include "ipc/listener.h"
#include "tests/fuzz/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using mp::internal::ScopedFd;
  const uint8_t flags = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  int fds[2];
  MP_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  mp::Connection conn(ScopedFd(fds[0]), true, true, true, /*python_framing=*/true);
  ScopedFd peer(fds[1]);
  fcntl(peer.get(), F_SETFL, O_NONBLOCK);
  mp::fuzz::WriteWhatFits(peer.get(), bytes);
  ::shutdown(peer.get(), SHUT_WR);  // our answers still fit its receive buffer
  const std::string key = (flags & 2) ? "" : "secret";
  const auto start = mp::internal::Clock::now();
  const mp::internal::Deadline deadline = mp::internal::DeadlineAfter(std::chrono::seconds(5));
  try {
    if (flags & 1) {
      mp::internal::DeliverChallenge(conn, key, deadline);
    } else {
      mp::internal::AnswerChallenge(conn, key, deadline);
    }
  } catch (const mp::Error&) {
  }
  // Every byte was there or the stream had ended: no wait for the deadline.
  MP_CHECK(mp::internal::Clock::now() - start < std::chrono::seconds(4));
  return 0;
}
