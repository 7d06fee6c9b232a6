// Load generator for the echo servers (Boost.Asio, one thread): --connections
// clients each make --requests round trips of --size bytes, on one long-lived
// connection each or (--short) a new connection per request. Every reply is
// checked byte for byte against the upper-cased request; a mismatch, reset or
// timeout counts as a failure. Prints one line:
//   requests=N failures=F seconds=S rps=R p50_us=A p99_us=B max_us=C
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "apps/echo_server/echo.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "server address");
DEFINE_int32(port, 8080, "server port");
DEFINE_int32(connections, 8, "concurrent clients");
DEFINE_int32(requests, 1000, "round trips per client");
DEFINE_int32(size, 64, "bytes per request");
DEFINE_bool(short_connections, false, "a new connection for every request");
DEFINE_int32(timeout_ms, 10000, "a round trip slower than this fails");

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  std::vector<double> latencies_us;
  long failures = 0;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, tcp::endpoint server, Stats& stats, unsigned seed)
      : io_(io), server_(server), socket_(io), timer_(io), stats_(stats) {
    std::mt19937 rng(seed);
    request_.resize(static_cast<size_t>(FLAGS_size));
    for (char& c : request_) c = static_cast<char>('a' + rng() % 26);
    expected_ = request_;
    echo::Upper(expected_.data(), expected_.size());
    reply_.resize(request_.size());
  }

  void Start() { Connect(); }

 private:
  void Connect() {
    socket_ = tcp::socket(io_);
    socket_.async_connect(server_, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->Failed();
      self->socket_.set_option(tcp::no_delay(true));
      self->RoundTrip();
    });
  }

  void RoundTrip() {
    if (done_ == FLAGS_requests) return Close();
    start_ = Clock::now();
    timer_.expires_after(std::chrono::milliseconds(FLAGS_timeout_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    asio::async_write(socket_, asio::buffer(request_), [self = shared_from_this()](
                                                            const boost::system::error_code& ec, size_t) {
      if (ec) return self->Failed();
      asio::async_read(self->socket_, asio::buffer(self->reply_),
                       [self](const boost::system::error_code& rec, size_t) {
                         self->timer_.cancel();
                         if (rec || self->reply_ != self->expected_) return self->Failed();
                         self->stats_.latencies_us.push_back(
                             std::chrono::duration<double, std::micro>(Clock::now() - self->start_).count());
                         ++self->done_;
                         if (FLAGS_short_connections) {
                           boost::system::error_code ignored;
                           self->socket_.close(ignored);
                           if (self->done_ < FLAGS_requests) return self->Connect();
                           return;
                         }
                         self->RoundTrip();
                       });
    });
  }

  void Failed() {
    timer_.cancel();
    ++stats_.failures;
    ++done_;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (done_ < FLAGS_requests) Connect();  // Go on with a new connection.
  }

  void Close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  asio::io_context& io_;
  tcp::endpoint server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  Stats& stats_;
  std::string request_, expected_, reply_;
  int done_ = 0;
  Clock::time_point start_;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "echo load generator");
  asio::io_context io;
  const tcp::endpoint server(asio::ip::make_address(FLAGS_host), static_cast<unsigned short>(FLAGS_port));
  Stats stats;
  stats.latencies_us.reserve(static_cast<size_t>(FLAGS_connections) * FLAGS_requests);
  for (int i = 0; i < FLAGS_connections; ++i) {
    std::make_shared<Client>(io, server, stats, static_cast<unsigned>(i))->Start();
  }
  const auto start = Clock::now();
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const size_t ok = stats.latencies_us.size();
  const double max = stats.latencies_us.empty() ? 0 : *std::max_element(stats.latencies_us.begin(), stats.latencies_us.end());
  const double p50 = Percentile(stats.latencies_us, 0.50), p99 = Percentile(stats.latencies_us, 0.99);
  std::printf("requests=%zu failures=%ld seconds=%.3f rps=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n", ok,
              stats.failures, seconds, ok / seconds, p50, p99, max);
  return stats.failures == 0 ? 0 : 1;
}
