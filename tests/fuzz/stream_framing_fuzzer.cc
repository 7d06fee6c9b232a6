// Fuzzes the byte-stream framing: what a peer writes on a Listener's or
// Client's connection (Python's big-endian lengths and long form), on a
// stream socket framed in the machine's order, and on a simplex Pipe. The
// receiver gets whole messages, or an mp::Error that closes the connection,
// and never allocates more than the bytes that arrived or the maximum allows.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string_view>

#include "tests/fuzz/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using mp::internal::ScopedFd;
  const uint8_t flags = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  int fds[2];
  const bool pipe = (flags & 4) != 0;
  if (pipe) {
    MP_CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  } else {
    MP_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
  }
  mp::Connection conn(ScopedFd(fds[0]), true, !pipe, !pipe,
                      /*python_framing=*/!pipe && (flags & 8) != 0);
  mp::fuzz::WriteAndClose(ScopedFd(fds[1]), bytes);
  mp::fuzz::ReceiveAll(conn, mp::fuzz::ModeFrom(flags), bytes.size());
  return 0;
}
