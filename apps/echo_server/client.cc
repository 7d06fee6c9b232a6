// 004 练习 3, the client: reads lines from stdin, sends each to the server
// and prints the reply.
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <iostream>
#include <string>

#include "apps/common/app.h"
#include "apps/echo_server/echo.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "server address");
DEFINE_int32(port, 8080, "server port");

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "004 练习 3: the echo client");
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket client(io);
  client.connect({asio::ip::make_address(FLAGS_host), static_cast<unsigned short>(FLAGS_port)});
  for (std::string msg; std::getline(std::cin, msg);) {
    if (msg.empty()) continue;
    asio::write(client, asio::buffer(msg));
    std::string data(msg.size(), '\0');
    asio::read(client, asio::buffer(data));
    apps::Print(data);
  }
}
