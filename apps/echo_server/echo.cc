#include "apps/echo_server/echo.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

void ServeBlocking(int fd, std::chrono::milliseconds idle) {
  std::array<char, kBufferBytes> buf;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(idle.count()));
    if (ready == 0) break;  // Idle too long.
    if (ready < 0) {
      if (errno == EINTR) break;  // Asked to stop.
      break;
    }
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;  // Closed (or half-closed: nothing more to answer), or reset.
    Upper(buf.data(), static_cast<size_t>(n));
    size_t sent = 0;
    while (sent < static_cast<size_t>(n)) {
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

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::chrono::milliseconds idle)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), idle_(idle) {}

  void Start() {
    ArmTimer();
    Read();
  }

 private:
  void ArmTimer() {
    timer_.expires_after(idle_);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);  // Idle too long.
      }
    });
  }

  void Read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](
                                                    const boost::system::error_code& ec, size_t n) {
      if (ec) {  // Closed, reset, or closed by the idle timer.
        self->timer_.cancel();
        return;
      }
      self->ArmTimer();
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
  std::chrono::milliseconds idle_;
  std::array<char, kBufferBytes> buf_;
};

}  // namespace

void StartAsyncSession(tcp::socket socket, std::chrono::milliseconds idle) {
  std::make_shared<Session>(std::move(socket), idle)->Start();
}

}  // namespace echo
