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

// ServeBlocking echoes the upper-cased bytes of `fd` back until the client
// closes, resets, or stays idle for `idle`. Closes fd.
void ServeBlocking(int fd, std::chrono::milliseconds idle);

// StartAsyncSession serves `socket` on its io_context: read, upper-case,
// write back, with the idle timeout reset on every read.
void StartAsyncSession(boost::asio::ip::tcp::socket socket, std::chrono::milliseconds idle);

}  // namespace echo

#endif  // APPS_ECHO_SERVER_ECHO_H_
