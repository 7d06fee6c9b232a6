// What the echo servers share: the listening socket, the upper-casing echo
// of one connection (blocking, with an idle timeout and a bounded buffer),
// and the asynchronous per-connection echo for the event-loop workers.
#ifndef APPS_ECHO_SERVER_ECHO_H_
#define APPS_ECHO_SERVER_ECHO_H_

#include <chrono>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace echo {

// Largest read per call: the per-connection buffer bound.
inline constexpr size_t kBufferBytes = 64 * 1024;

// Listen on 127.0.0.1:port (0: any free port). Returns the acceptor.
boost::asio::ip::tcp::acceptor Listen(boost::asio::io_context& io, int port, int backlog = 1024);

// Upper-cases ASCII letters in place (the document's data.upper()).
void Upper(char* data, size_t n);

// How long a connection may wait: for the client's next bytes (idle), and
// for the client to take what it is sent (send: a client that stops reading
// while it sends is dropped then, instead of holding a worker for ever).
struct Timeouts {
  std::chrono::milliseconds idle;
  std::chrono::milliseconds send;
};

// ServeBlocking echoes the upper-cased bytes of `fd` back until the client
// closes, resets, stays idle too long or stops reading. Closes fd.
void ServeBlocking(int fd, Timeouts timeouts);

// StartAsyncSession serves `socket` on its io_context: read, upper-case,
// write back, within the same timeouts.
void StartAsyncSession(boost::asio::ip::tcp::socket socket, Timeouts timeouts);

// AcceptBackoff: how long to stop accepting after accept() failed for want
// of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the pending
// client stays queued, so accepting again at once would spin. Doubles from
// 10 ms to 1 s while the failures last; Reset once an accept succeeds.
class AcceptBackoff {
 public:
  // IsResourceError: whether `err` (an errno) is one to back off from.
  static bool IsResourceError(int err);
  std::chrono::milliseconds Next();
  void Reset() { delay_ = std::chrono::milliseconds(0); }

 private:
  std::chrono::milliseconds delay_{0};
};

}  // namespace echo

#endif  // APPS_ECHO_SERVER_ECHO_H_
