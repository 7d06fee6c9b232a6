// Fuzzes the record framing of a duplex Pipe (SOCK_SEQPACKET): a peer that
// shares the socket sends records of any size and content, in any order.
// The input is a list of records, each a 2-byte little-endian length and
// that many bytes. The receiver gets whole messages, skips foreign records
// with an mp::Error, and never allocates more than arrived.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "tests/fuzz/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using mp::internal::ScopedFd;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  int fds[2];
  MP_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
  mp::Connection conn(ScopedFd(fds[0]), true, true, true);
  ScopedFd peer(fds[1]);
  size_t records = 0;
  while (rest.size() >= 2 && records < 64) {
    uint16_t len;
    std::memcpy(&len, rest.data(), 2);
    rest.remove_prefix(2);
    len = static_cast<uint16_t>(std::min<size_t>(len, rest.size()));
    if (::send(peer.get(), rest.data(), len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) break;
    rest.remove_prefix(len);
    ++records;
  }
  peer.reset();
  mp::fuzz::ReceiveAll(conn, mp::fuzz::ModeFrom(flags), records);
  return 0;
}
