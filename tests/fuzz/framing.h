// What the framing fuzzers share: a peer that has already written its bytes
// and gone, and a receiver that reads messages until the stream ends.
#ifndef TESTS_FUZZ_FRAMING_H_
#define TESTS_FUZZ_FRAMING_H_

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "base/errors.h"
#include "base/scoped_fd.h"
#include "ipc/pipe.h"

namespace mp::fuzz {

// The options a fuzz input's first byte picks.
struct ReceiveMode {
  bool into_buffer;     // recv_bytes_into instead of recv_bytes
  bool small_maximum;   // set_max_message_size(100)
};

inline ReceiveMode ModeFrom(uint8_t byte) { return {(byte & 1) != 0, (byte & 2) != 0}; }

// Reads messages until the connection reports the end (EOF, or a broken
// frame that closes it): every failure must be an mp::Error, and at most
// `limit` messages (or skipped records) come out of `limit` bytes or records.
inline void ReceiveAll(Connection& conn, ReceiveMode mode, size_t limit) {
  if (mode.small_maximum) conn.set_max_message_size(100);
  std::vector<char> buf(64);
  for (size_t n = 0; n <= limit + 1; ++n) {
    try {
      if (mode.into_buffer) {
        const size_t len = conn.recv_bytes_into(std::span<char>(buf), 3);
        MP_CHECK(len + 3 <= buf.size());
      } else {
        const std::string message = conn.recv_bytes();
        if (mode.small_maximum) MP_CHECK(message.size() <= 100);
      }
    } catch (const BufferTooShort&) {
      // The message was taken whole; the next one follows.
    } catch (const EOFError&) {
      return;
    } catch (const Error&) {
      // A broken frame closes a stream; a duplex Pipe skips the record.
      if (conn.closed()) return;
    }
  }
  MP_CHECK(false && "more messages than bytes");
}

// Writes what fits of `bytes` to the non-blocking `fd` (small inputs fit a
// socket's buffer, so nobody needs to read at the same time; past a full
// buffer, the receiver sees a truncated stream).
inline void WriteWhatFits(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// WriteWhatFits, then closes `fd`: the receiver sees the end after the bytes.
inline void WriteAndClose(internal::ScopedFd fd, std::string_view bytes) { WriteWhatFits(fd.get(), bytes); }

}  // namespace mp::fuzz

#endif  // TESTS_FUZZ_FRAMING_H_
