// 004 练习 3: concurrent socket communication on multiprocessing, as the
// document asks for it: the server accepts, and each client is served by a
// process of its own that upper-cases what it receives (recv(1024) ->
// send(upper)) until the client closes. Loopback; --port (0: a free port,
// printed as "PORT <n>").
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "apps/common/app.h"
#include "apps/echo_server/echo.h"
#include "gflags/gflags.h"
#include "process/process.h"

DEFINE_int32(port, 8080, "TCP port on 127.0.0.1 (0: a free one)");

void talk(int conn) {
  char data[1024];
  while (true) {
    const ssize_t n = recv(conn, data, sizeof data, 0);
    if (n <= 0) break;  // 客户端关闭了连接
    echo::Upper(data, static_cast<size_t>(n));
    if (send(conn, data, static_cast<size_t>(n), MSG_NOSIGNAL) < 0) break;
  }
  close(conn);
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "004 练习 3: one process per connection");
  boost::asio::io_context io;
  auto server = echo::Listen(io, FLAGS_port, 5);
  std::printf("PORT %d\n", server.local_endpoint().port());
  std::fflush(stdout);
  while (true) {
    const int conn = accept4(server.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    mp::Process p(talk, conn);
    p.start();
    close(conn);
    mp::active_children();  // Reaps the processes of clients that left.
  }
}
