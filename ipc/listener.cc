#include "ipc/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/mutex.h"

namespace mp {
namespace {

using internal::ScopedFd;

namespace asio = boost::asio;

bool IsTcpAddress(const std::string& address) {
  return address.find('/') == std::string::npos && address.rfind(':') != std::string::npos;
}

std::pair<std::string, std::string> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, address.substr(colon + 1)};
}

// Python's authkey handshake (multiprocessing/connection.py, 3.12+): the
// challenge is "#CHALLENGE#" + "{sha256}" + 40 random bytes; the answer is
// "{sha256}" + HMAC-SHA256(key, challenge without "#CHALLENGE#"). Python
// 3.11 and older send 20 random bytes with no prefix and answer with a raw
// 16-byte HMAC-MD5: both are understood here, as 3.12 does.
constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
constexpr std::string_view kSha256Prefix = "{sha256}";
constexpr size_t kHandshakeMax = 256;
constexpr size_t kChallengeBytes = 40;
constexpr size_t kLegacyChallengeBytes = 20;  // Python <= 3.11
constexpr size_t kMd5DigestBytes = 16;

std::string Hmac(const EVP_MD* md, const std::string& key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest,
           &len) == nullptr) {
    throw AuthenticationError("authkey: HMAC failed");
  }
  return std::string(reinterpret_cast<char*>(digest), len);
}

// A message's digest name and payload, as Python's
// _get_digest_name_and_payload: "" for the legacy (MD5, unprefixed) form.
std::pair<std::string, std::string_view> DigestAndPayload(std::string_view message) {
  if (message.size() == kLegacyChallengeBytes || message.size() == kMd5DigestBytes) {
    return {"", message};
  }
  if (message.substr(0, kSha256Prefix.size()) == kSha256Prefix) {
    return {"sha256", message.substr(kSha256Prefix.size())};
  }
  throw AuthenticationError("authkey handshake: unsupported digest or message length");
}

// The descriptor that, readable, tells a Listener's handshake thread that
// the listener is closing (-1 elsewhere).
thread_local int t_handshake_cancel_fd = -1;

// Waits until `conn` is readable by the deadline; false on time-out.
// Throws if the listener running this handshake is closing.
bool WaitForHandshake(Connection& conn, const internal::Deadline& deadline) {
  if (t_handshake_cancel_fd < 0) return conn.poll_until(deadline);
  pollfd polls[2] = {{conn.fileno(), POLLIN, 0}, {t_handshake_cancel_fd, POLLIN, 0}};
  if (internal::PollUntil(polls, 2, deadline, "authkey handshake: poll") == 0) return false;
  if (polls[1].revents) throw AuthenticationError("authkey handshake cancelled: the listener closed");
  return true;
}

// Receives one handshake message by the deadline.
std::string RecvHandshake(Connection& conn, const internal::Deadline& deadline) {
  if (!WaitForHandshake(conn, deadline)) throw AuthenticationError("authkey handshake timed out");
  // A peer that starts a message and stalls is bounded too (SO_RCVTIMEO).
  auto left = std::chrono::ceil<std::chrono::microseconds>(
      deadline ? *deadline - internal::Clock::now() : std::chrono::microseconds(0));
  if (deadline && left.count() <= 0) left = std::chrono::microseconds(1);
  timeval tv{static_cast<time_t>(left.count() / 1000000),
             static_cast<suseconds_t>(left.count() % 1000000)};
  setsockopt(conn.fileno(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string message;
  try {
    message = conn.recv_bytes(kHandshakeMax);
  } catch (const TimeoutError&) {
    throw AuthenticationError("authkey handshake timed out");
  }
  timeval none{0, 0};
  setsockopt(conn.fileno(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  return message;
}

}  // namespace

namespace internal {

void DeliverChallenge(Connection& conn, const std::string& authkey, const Deadline& deadline) {
  unsigned char nonce[kChallengeBytes];
  if (RAND_bytes(nonce, sizeof nonce) != 1) throw Error("authkey: RAND_bytes failed");
  const std::string message =
      std::string(kSha256Prefix) + std::string(reinterpret_cast<char*>(nonce), sizeof nonce);
  conn.send_bytes(std::string(kChallenge) + message);
  const std::string response = RecvHandshake(conn, deadline);
  // A legacy (Python <= 3.11) peer answers with a raw HMAC-MD5 of the whole
  // message; a modern one with "{sha256}" and the HMAC-SHA256.
  bool ok = false;
  try {
    const auto [digest, mac] = DigestAndPayload(response);
    const std::string expected = Hmac(digest.empty() ? EVP_md5() : EVP_sha256(), authkey, message);
    ok = mac.size() == expected.size() &&
         CRYPTO_memcmp(mac.data(), expected.data(), expected.size()) == 0;
  } catch (const AuthenticationError&) {
    ok = false;
  }
  if (!ok) {
    conn.send_bytes(kFailure);
    throw AuthenticationError("digest received was wrong (authkey mismatch)");
  }
  conn.send_bytes(kWelcome);
}

void AnswerChallenge(Connection& conn, const std::string& authkey, const Deadline& deadline) {
  const std::string received = RecvHandshake(conn, deadline);
  if (received.substr(0, kChallenge.size()) != kChallenge) {
    throw AuthenticationError("protocol error: expected an authkey challenge");
  }
  const std::string_view message = std::string_view(received).substr(kChallenge.size());
  if (message.size() < kLegacyChallengeBytes) {
    throw AuthenticationError("authkey challenge too short");
  }
  const std::string digest = DigestAndPayload(message).first;
  if (digest.empty()) {
    conn.send_bytes(Hmac(EVP_md5(), authkey, message));  // a legacy (Python <= 3.11) peer
  } else {
    conn.send_bytes(std::string(kSha256Prefix) + Hmac(EVP_sha256(), authkey, message));
  }
  const std::string answer = RecvHandshake(conn, deadline);
  if (answer == kFailure) throw AuthenticationError("digest sent was rejected (authkey mismatch)");
  if (answer != kWelcome) throw AuthenticationError("protocol error: expected #WELCOME#");
}

}  // namespace internal

namespace {

void Authenticate(Connection& conn, const std::string& authkey, bool server,
                  std::chrono::milliseconds timeout) {
  if (authkey.empty()) return;
  const internal::Deadline deadline = internal::DeadlineAfter(timeout);
  try {
    if (server) {
      internal::DeliverChallenge(conn, authkey, deadline);
      internal::AnswerChallenge(conn, authkey, deadline);
    } else {
      internal::AnswerChallenge(conn, authkey, deadline);
      internal::DeliverChallenge(conn, authkey, deadline);
    }
  } catch (const Error& e) {
    // A client tells a server that never challenged it (one without a key:
    // see RefuseUnauthenticated) why it leaves, in Python's own word for a
    // failed handshake. Best effort: the peer may be gone.
    if (!server && !conn.closed()) {
      try {
        conn.send_bytes(kFailure);
      } catch (const Error&) {
      }
    }
    conn.close();
    if (dynamic_cast<const AuthenticationError*>(&e) != nullptr) throw;
    throw AuthenticationError(std::string("authkey handshake failed: ") + e.what());
  }
}

// A connection made without a key whose peer wants one fails at its first
// message with mp::AuthenticationError on this side too (the peer's side
// fails in its handshake): a server's challenge reaching a keyless client,
// or a keyed client's #FAILURE# reaching a keyless server.
void RefuseUnauthenticated(Connection& conn, bool server) {
  if (server) {
    internal::RefuseFirstMessage(conn, std::string(kFailure),
                                 "the client wanted an authkey handshake; this listener has no authkey");
  } else {
    internal::RefuseFirstMessage(conn, std::string(kChallenge),
                                 "the server asks for an authkey; this client has none");
  }
}

}  // namespace

namespace internal {

// Handshakes under way and their outcomes, shared with the threads that run
// them (which may outlive the Listener by up to a handshake timeout).
struct HandshakeQueue {
  struct Outcome {
    std::optional<Connection> conn;
    std::exception_ptr error;
    std::string peer;
  };
  internal::Mutex mu;
  std::condition_variable idle;  // running dropped
  std::deque<Outcome> done ABSL_GUARDED_BY(mu);
  int running ABSL_GUARDED_BY(mu) = 0;
  ScopedFd wake;                 // eventfd: an outcome is in `done`
  ScopedFd cancel;               // eventfd: the listener closes; handshakes end now
  const pid_t owner = getpid();  // a forked copy of the listener makes its own
  // The handshake threads, joined once they have posted (Reap) and at the
  // latest when the listener closes (Cancel): none outlives the listener
  // (one still exiting at the end of main() races with OpenSSL's clean-up).
  std::vector<std::thread> threads ABSL_GUARDED_BY(mu);
  std::vector<std::thread::id> posted ABSL_GUARDED_BY(mu);  // threads past Post

  HandshakeQueue()
      : wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), cancel(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake.valid() || !cancel.valid()) throw_errno("eventfd");
  }
  ~HandshakeQueue() {
    // In a forked child these are the parent's threads (not this process's):
    // forgotten, never joined or detached. (Cancel leaves none in the owner.)
    if (owner != getpid()) new std::vector<std::thread>(std::move(threads));  // NOLINT: leaked on purpose
    for (std::thread& t : threads) {
      if (t.joinable()) t.detach();
    }
  }
  // Reap joins the threads that have posted their outcome (they are ending).
  void Reap() ABSL_LOCKS_EXCLUDED(mu) {
    std::vector<std::thread> ending;
    {
      internal::MutexLock lock(mu);
      for (auto it = threads.begin(); it != threads.end();) {
        if (std::find(posted.begin(), posted.end(), it->get_id()) != posted.end()) {
          posted.erase(std::find(posted.begin(), posted.end(), it->get_id()));
          ending.push_back(std::move(*it));
          it = threads.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (std::thread& t : ending) t.join();
  }
  // Post hands an outcome over; the thread touches nothing of the queue's
  // after it (so Cancel may close the descriptors once `running` is 0).
  void Post(Outcome outcome) ABSL_LOCKS_EXCLUDED(mu) {
    {
      internal::MutexLock lock(mu);
      done.push_back(std::move(outcome));
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(wake.get(), &one, sizeof one);
      --running;
      posted.push_back(std::this_thread::get_id());
    }
    idle.notify_all();
  }
  // Cancel ends every handshake under way and waits for their threads
  // (bounded: a cancelled handshake returns at once, a stalled half-message
  // within its deadline), then drops what was never handed out.
  void Cancel(std::chrono::milliseconds bound) ABSL_LOCKS_EXCLUDED(mu) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(cancel.get(), &one, sizeof one);
    std::vector<std::thread> all;
    {
      internal::MutexLock lock(mu);
      if (!lock.WaitFor(idle, bound, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return running == 0; })) {
        // A thread past its deadline: left to end on its own (it holds the
        // queue); the rest are joined.
        return;
      }
      done.clear();
      all = std::move(threads);
      threads.clear();
      posted.clear();
      // Closed now, not when the last thread lets go of the queue: a
      // listener leaves no descriptor behind.
      wake.reset();
      cancel.reset();
    }
    for (std::thread& t : all) t.join();  // each has posted: it is ending
  }
};

}  // namespace internal

namespace {

std::string PeerAddress(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in.sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6.sin6_port));
  }
  return "";
}

}  // namespace

namespace {

// A fresh private directory (0700) for a Listener() socket: under $TMPDIR,
// or /tmp when $TMPDIR is so long that the socket's path would not fit a
// sockaddr_un (108 bytes; Bazel's test TMPDIR, for one, is longer).
std::string MakePrivateDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  if (base.size() + sizeof("/mp-XXXXXX/listener") > sizeof(sockaddr_un::sun_path)) base = "/tmp";
  std::string pattern = base + "/mp-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw_errno("Listener: mkdtemp");
  return pattern;  // mkdtemp makes it 0700
}

}  // namespace

Listener::Listener(const std::string& requested, std::string authkey, int backlog,
                   ConnectionOptions options)
    : authkey_(std::move(authkey)), options_(options) {
  // No address: a fresh Unix socket in a private directory (Python's
  // Listener(address=None)).
  if (requested.empty()) private_dir_ = MakePrivateDir();
  const std::string address = requested.empty() ? private_dir_ + "/listener" : requested;
  asio::io_context io;
  try {
    if (IsTcpAddress(address)) {
      auto [host, port] = SplitHostPort(address);
      asio::ip::tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(host, port, asio::ip::tcp::resolver::passive);
      asio::ip::tcp::acceptor acceptor(io);
      const asio::ip::tcp::endpoint endpoint = *endpoints.begin();
      acceptor.open(endpoint.protocol());
      acceptor.set_option(asio::socket_base::reuse_address(true));
      acceptor.bind(endpoint);
      acceptor.listen(backlog);
      const auto bound = acceptor.local_endpoint();
      const std::string ip = bound.address().to_string();
      address_ = (bound.address().is_v6() ? "[" + ip + "]" : ip) + ":" + std::to_string(bound.port());
      fd_.reset(acceptor.release());
    } else {
      asio::local::stream_protocol::acceptor acceptor(io);
      acceptor.open();
      acceptor.bind(asio::local::stream_protocol::endpoint(address));
      unix_path_ = address;
      acceptor.listen(backlog);
      address_ = address;
      fd_.reset(acceptor.release());
    }
  } catch (const boost::system::system_error& e) {
    if (!private_dir_.empty()) ::rmdir(private_dir_.c_str());  // no destructor runs
    throw Error("Listener(" + address + "): " + e.what());
  }
  fcntl(fd_.get(), F_SETFD, FD_CLOEXEC);
  MakeHandshakeQueue();
}

void Listener::MakeHandshakeQueue() {
  handshakes_ = std::make_shared<internal::HandshakeQueue>();
  ready_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!ready_fd_.valid()) throw_errno("Listener: epoll_create1");
  for (const int fd : {fd_.get(), handshakes_->wake.get()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(ready_fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) throw_errno("Listener: epoll_ctl");
  }
}


Listener::Listener() : Listener("") {}

Listener::Listener(internal::ListenerParts parts)
    : fd_(parts.fd ? fcntl(parts.fd->get(), F_DUPFD_CLOEXEC, 0) : -1),
      address_(std::move(parts.address)),
      authkey_(std::move(parts.authkey)),
      unix_path_(std::move(parts.unix_path)),
      private_dir_(std::move(parts.private_dir)),
      options_{parts.handshake_timeout, parts.max_message_size} {
  // The descriptor came from another process: it must be a listening socket.
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    unix_path_.clear();  // not ours to remove
    private_dir_.clear();
    throw Error("Listener: the descriptor received is not a listening socket");
  }
  MakeHandshakeQueue();
}

internal::ListenerParts Listener::parts() const {
  if (!fd_.valid()) throw Error("Listener: listener is closed");
  internal::ScopedFd copy(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) throw_errno("Listener: dup");
  return {std::make_shared<internal::ScopedFd>(std::move(copy)), address_, authkey_, unix_path_, private_dir_, options_.handshake_timeout,
          options_.max_message_size};
}

Listener::~Listener() { close(); }

Listener::Listener(Listener&& other) noexcept
    : fd_(std::move(other.fd_)),
      address_(std::move(other.address_)),
      authkey_(std::move(other.authkey_)),
      unix_path_(std::exchange(other.unix_path_, {})),
      private_dir_(std::exchange(other.private_dir_, {})),
      options_(other.options_),
      last_accepted_(std::move(other.last_accepted_)),
      handshakes_(std::move(other.handshakes_)),
      ready_fd_(std::move(other.ready_fd_)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::move(other.fd_);
    address_ = std::move(other.address_);
    authkey_ = std::move(other.authkey_);
    unix_path_ = std::exchange(other.unix_path_, {});
    private_dir_ = std::exchange(other.private_dir_, {});
    options_ = other.options_;
    last_accepted_ = std::move(other.last_accepted_);
    handshakes_ = std::move(other.handshakes_);
    ready_fd_ = std::move(other.ready_fd_);
  }
  return *this;
}

void Listener::close() {
  if (handshakes_ && handshakes_->owner == getpid()) {
    handshakes_->Cancel(options_.handshake_timeout + std::chrono::seconds(1));
  }
  fd_.reset();
  ready_fd_.reset();
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
  if (!private_dir_.empty()) {
    ::rmdir(private_dir_.c_str());
    private_dir_.clear();
  }
}

Connection Listener::accept() { return *AcceptUntil(std::nullopt); }

std::optional<Connection> Listener::AcceptUntil(const internal::Deadline& deadline) {
  if (!fd_.valid()) throw Error("Listener.accept: listener is closed");
  // A copy forked into a child shares the parent's descriptors, wake-ups and
  // cancellation included: it makes its own (fileno() changes then).
  if (!handshakes_ || handshakes_->owner != getpid()) MakeHandshakeQueue();
  internal::HandshakeQueue& queue = *handshakes_;
  for (;;) {
    queue.Reap();
    bool room;
    {
      internal::MutexLock lock(queue.mu);
      if (!queue.done.empty()) {
        internal::HandshakeQueue::Outcome outcome = std::move(queue.done.front());
        queue.done.pop_front();
        if (!queue.done.empty()) {
          // More are waiting: keep fileno() readable for them (the wake-up
          // count may have been read already).
          const uint64_t one = 1;
          [[maybe_unused]] ssize_t n = ::write(queue.wake.get(), &one, sizeof one);
        }
        if (outcome.error) std::rethrow_exception(outcome.error);
        last_accepted_ = std::move(outcome.peer);
        return std::move(*outcome.conn);
      }
      room = queue.running < kMaxHandshakes;
    }
    // Wait for a new client (while there is room for its handshake) or for
    // a handshake to end. No deadline: accept() blocks, as Python's does.
    pollfd polls[2] = {{queue.wake.get(), POLLIN, 0}, {fd_.get(), POLLIN, 0}};
    int wait_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - internal::Clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
    }
    const int ready = ::poll(polls, room ? 2 : 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno("Listener.accept: poll");
    }
    if (ready == 0) return std::nullopt;  // the deadline passed
    if (polls[0].revents) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(queue.wake.get(), &count, sizeof count);
    }
    if (!room || !polls[1].revents) continue;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    const int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      throw_errno("Listener.accept");
    }
    Connection conn(ScopedFd(fd), true, true, true, /*python_framing=*/true);
    conn.set_max_message_size(options_.max_message_size);
    if (authkey_.empty()) {
      RefuseUnauthenticated(conn, /*server=*/true);
      last_accepted_ = PeerAddress(peer);
      return conn;
    }
    {
      internal::MutexLock lock(queue.mu);
      ++queue.running;
    }
    try {
      internal::MutexLock lock(queue.mu);
      queue.threads.emplace_back([queue = handshakes_, conn = std::move(conn), key = authkey_,
                   timeout = options_.handshake_timeout, address = PeerAddress(peer)]() mutable {
        t_handshake_cancel_fd = queue->cancel.get();
        internal::HandshakeQueue::Outcome outcome;
        outcome.peer = address;
        try {
          Authenticate(conn, key, /*server=*/true, timeout);
          outcome.conn.emplace(std::move(conn));
        } catch (...) {
          outcome.error = std::current_exception();
        }
        queue->Post(std::move(outcome));
      });
    } catch (const std::system_error&) {
      // No thread to be had: this client is refused, the listener lives.
      internal::MutexLock lock(queue.mu);
      --queue.running;
    }
  }
}

Connection Client(const std::string& address, const std::string& authkey,
                  ConnectionOptions options) {
  asio::io_context io;
  int fd;
  try {
    if (IsTcpAddress(address)) {
      auto [host, port] = SplitHostPort(address);
      asio::ip::tcp::resolver resolver(io);
      asio::ip::tcp::socket socket(io);
      asio::connect(socket, resolver.resolve(host, port));
      socket.set_option(asio::ip::tcp::no_delay(true));
      fd = socket.release();
    } else {
      asio::local::stream_protocol::socket socket(io);
      socket.connect(asio::local::stream_protocol::endpoint(address));
      fd = socket.release();
    }
  } catch (const boost::system::system_error& e) {
    throw Error("Client(" + address + "): " + e.what());
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  Connection conn(ScopedFd(fd), true, true, true, /*python_framing=*/true);
  conn.set_max_message_size(options.max_message_size);
  if (authkey.empty()) RefuseUnauthenticated(conn, /*server=*/false);
  Authenticate(conn, authkey, /*server=*/false, options.handshake_timeout);
  return conn;
}

}  // namespace mp
