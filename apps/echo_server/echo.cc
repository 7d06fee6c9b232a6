#include "apps/echo_server/echo.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

namespace echo {

namespace asio = boost::asio;
using asio::ip::tcp;

tcp::acceptor Listen(asio::io_context& io, int port, int backlog) {
  tcp::acceptor acceptor(io);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(backlog);
  return acceptor;
}

void Upper(char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
  }
}

void ServeBlocking(int fd, Timeouts timeouts) {
  const timeval send_timeout{static_cast<time_t>(timeouts.send.count() / 1000),
                             static_cast<suseconds_t>(timeouts.send.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  std::array<char, kBufferBytes> buf;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeouts.idle.count()));
    if (ready <= 0) break;  // Idle too long, or asked to stop (EINTR).
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;  // Closed (or half-closed: nothing more to answer), or reset.
    Upper(buf.data(), static_cast<size_t>(n));
    size_t sent = 0;
    while (sent < static_cast<size_t>(n)) {
      // EAGAIN after the send timeout: the client stopped reading.
      const ssize_t w = ::send(fd, buf.data() + sent, static_cast<size_t>(n) - sent, MSG_NOSIGNAL);
      if (w <= 0) {
        ::close(fd);
        return;
      }
      sent += static_cast<size_t>(w);
    }
  }
  ::close(fd);
}

bool AcceptBackoff::IsResourceError(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

std::chrono::milliseconds AcceptBackoff::Next() {
  delay_ = std::clamp(delay_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  return delay_;
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Timeouts timeouts)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), timeouts_(timeouts) {}

  void Start() { Read(); }

 private:
  // The timer bounds whichever wait is under way: for the client's next
  // bytes (idle) or for it to take our answer (send).
  void ArmTimer(std::chrono::milliseconds limit) {
    timer_.expires_after(limit);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);  // Too long: idle, or not reading.
      }
    });
  }

  void Read() {
    ArmTimer(timeouts_.idle);
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                    const boost::system::error_code& ec, size_t n) {
      if (ec) {  // Closed, reset, or closed by the timer.
        self->timer_.cancel();
        return;
      }
      self->ArmTimer(self->timeouts_.send);
      Upper(self->buf_.data(), n);
      asio::async_write(self->socket_, asio::buffer(self->buf_.data(), n),
                        [self](const boost::system::error_code& wec, size_t) {
                          if (wec) {
                            self->timer_.cancel();
                            return;
                          }
                          self->Read();
                        });
    });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  Timeouts timeouts_;
  std::array<char, kBufferBytes> buf_;
};

}  // namespace

void StartAsyncSession(tcp::socket socket, Timeouts timeouts) {
  std::make_shared<Session>(std::move(socket), timeouts)->Start();
}

}  // namespace echo
