#include "ipc/connection.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <endian.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include "base/errors.h"
#include "ipc/fd_passing.h"

namespace mp {
namespace {

using internal::ScopedFd;

constexpr uint32_t kLongMessage = 0xffffffffu;
// Python frames a message of more than this many bytes in the long form
// (its 4-byte length is a signed int).
constexpr uint64_t kPythonShortMax = 0x7fffffff;
// How much a receive buffer grows at a time beyond what has arrived: a
// header that claims gigabytes allocates nothing until the bytes come.
constexpr size_t kGrowStep = 1 << 20;

// A duplex Pipe is a SOCK_SEQPACKET socket pair, which keeps the records
// that make up a message apart: the first record holds the header and the
// payload's first bytes, at most kFirstRecord in all, and the receiver
// takes it with one recv into a buffer of that size. On a byte stream a
// receiver must read the header first and the payload next, two system
// calls (reading more could take bytes of the next message, which another
// process sharing the connection may be about to read); here a small
// message costs one, measured at 4-5 us less per round trip on one CPU. The
// rest of a larger message follows in records received straight into place:
// a receiver asks for all that is missing and gets one record, never more
// than the message (MSG_TRUNC tells a longer, foreign record). The sender
// picks their size from its send buffer, which bounds a record (EMSGSIZE
// beyond it): half of it, at most kMaxRecord. (Debian caps socket buffers at
// net.core.wmem_max, 208 KiB by default, so a fixed 512 KiB would not do;
// fewer, larger records measured 25% faster on 1 MiB messages than 128 KiB
// ones.)
constexpr size_t kFirstRecord = 4096;
constexpr size_t kMaxRecord = 512 << 10;

// Blocks SIGPIPE in this thread for the lifetime of the guard, and swallows a
// SIGPIPE that our own write raised, so a pipe write to a closed reader fails
// with EPIPE instead of killing the process, without touching the program's
// signal handlers.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old_);
  }
  ~SigpipeGuard() {
    if (raised_ && !was_pending_) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      timespec zero{0, 0};
      while (sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void note_epipe() { raised_ = true; }

 private:
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

[[noreturn]] void ThrowSendError(const char* what) {
  if (errno == EPIPE || errno == ECONNRESET) {
    throw Error("Connection.send: the other end is closed (" + std::string(strerror(errno)) + ")");
  }
  throw_errno(what);
}

// Writes every byte of the iovecs, resuming after partial writes and EINTR.
void WriteAll(int fd, bool is_socket, iovec* iov, int iovcnt) {
  std::optional<SigpipeGuard> guard;
  if (!is_socket) guard.emplace();
  while (iovcnt > 0) {
    ssize_t n;
    if (is_socket) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iovcnt);
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } else {
      n = writev(fd, iov, iovcnt);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE && guard) guard->note_epipe();
      ThrowSendError("Connection.send");
    }
    size_t done = static_cast<size_t>(n);
    while (iovcnt > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
}

// Reads exactly `size` bytes. Returns false on EOF before the first byte;
// throws on EOF in the middle.
bool ReadExact(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, p + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) {
        if (got == 0) return false;
        throw Error("Connection.recv: connection reset in the middle of a message");
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        throw TimeoutError("Connection.recv: timed out");  // SO_RCVTIMEO (handshakes)
      }
      throw_errno("Connection.recv");
    }
    if (n == 0) {
      if (got == 0) return false;
      throw Error("Connection.recv: the other end closed in the middle of a message");
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// Sends one record (all of it or nothing: SOCK_SEQPACKET).
void SendRecord(int fd, iovec* iov, int iovcnt) {
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) ThrowSendError("Connection.send");
  }
}

// Receives one record of at most `size` bytes into `data`; returns its
// length (0: the other end closed). A longer record fails: it is not one of
// this framing's.
size_t RecvRecord(int fd, char* data, size_t size) {
  for (;;) {
    // MSG_TRUNC: the record's real length, even if longer than `size`.
    const ssize_t n = ::recv(fd, data, size, MSG_TRUNC);
    if (n >= 0) {
      if (static_cast<size_t>(n) > size) {
        throw internal::DecodeError("Connection.recv: a record of " + std::to_string(n) +
                                    " bytes where at most " + std::to_string(size) + " belong");
      }
      return static_cast<size_t>(n);
    }
    if (errno == ECONNRESET) return 0;
    if (errno != EINTR) throw_errno("Connection.recv");
  }
}

bool IsSeqpacket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

// The size of the records after a message's first (see kMaxRecord).
size_t RecordSize(int fd) {
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0) sndbuf = 0;
  return std::clamp<size_t>(static_cast<size_t>(sndbuf) / 2, kFirstRecord, kMaxRecord);
}

void SetBuffers(int fd) {
  // 1 MiB socket buffers take a 1 MiB message in one go (MEASURING.md:
  // 10-16 GiB/s instead of a bimodal 0.7-7 GiB/s).
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

}  // namespace

Connection::Connection(ScopedFd fd, bool readable, bool writable, bool is_socket,
                       bool python_framing) {
  const size_t record_size = is_socket && IsSeqpacket(fd.get()) ? RecordSize(fd.get()) : 0;
  state_ = std::make_shared<State>(
      State{std::move(fd), readable, writable, is_socket, record_size, python_framing});
}

int Connection::checked_fd(const char* what, bool want_read, bool want_write) const {
  if (!state_->fd.valid()) throw Error(std::string("Connection.") + what + ": handle is closed");
  if (want_read && !state_->readable) {
    throw Error(std::string("Connection.") + what + ": connection is write-only");
  }
  if (want_write && !state_->writable) {
    throw Error(std::string("Connection.") + what + ": connection is read-only");
  }
  return state_->fd.get();
}

void Connection::send_bytes(std::string_view bytes) {
  const int fd = checked_fd("send", false, true);
  unsigned char header[12];
  size_t header_len;
  // Python's framing: a big-endian length, or -1 and a big-endian 8-byte
  // length beyond 2^31 - 1. Ours (pipes): the same in the machine's order.
  const bool python = state_->python_framing;
  if (bytes.size() < (python ? kPythonShortMax + 1 : kLongMessage)) {
    uint32_t n = static_cast<uint32_t>(bytes.size());
    if (python) n = htobe32(n);
    std::memcpy(header, &n, 4);
    header_len = 4;
  } else {
    uint64_t n = bytes.size();
    if (python) n = htobe64(n);
    std::memcpy(header, &kLongMessage, 4);
    std::memcpy(header + 4, &n, 8);
    header_len = 12;
  }
  if (state_->record_size != 0) {
    size_t sent = std::min(bytes.size(), kFirstRecord - header_len);
    iovec first[2] = {{header, header_len}, {const_cast<char*>(bytes.data()), sent}};
    SendRecord(fd, first, sent == 0 ? 1 : 2);
    while (sent < bytes.size()) {
      const size_t n = std::min(state_->record_size, bytes.size() - sent);
      iovec piece{const_cast<char*>(bytes.data()) + sent, n};
      SendRecord(fd, &piece, 1);
      sent += n;
    }
    return;
  }
  iovec iov[2] = {{header, header_len}, {const_cast<char*>(bytes.data()), bytes.size()}};
  WriteAll(fd, state_->is_socket, iov, bytes.empty() ? 1 : 2);
}

void Connection::send_bytes(std::string_view buf, size_t offset, size_t size) {
  if (offset > buf.size()) throw ValueError("Connection.send_bytes: offset is past the buffer's end");
  if (size == std::string_view::npos) size = buf.size() - offset;
  if (size > buf.size() - offset) {
    throw ValueError("Connection.send_bytes: offset + size is past the buffer's end");
  }
  send_bytes(buf.substr(offset, size));
}

size_t Connection::recv_bytes_into(std::span<char> buf, size_t offset) {
  if (offset > buf.size()) throw ValueError("Connection.recv_bytes_into: offset is past the buffer's end");
  // Received whole first: a message must be taken off the connection even
  // when it does not fit, and BufferTooShort hands it over.
  std::string message = recv_bytes();
  if (message.size() > buf.size() - offset) throw BufferTooShort(std::move(message));
  std::memcpy(buf.data() + offset, message.data(), message.size());
  return message.size();
}

namespace {
// What precedes a connection's descriptor on the wire (send(other)).
constexpr std::string_view kConnectionTag = "mp.Connection:";
}  // namespace

void Connection::send(const Connection& other) {
  const int fd = checked_fd("send", false, true);
  const int theirs = other.checked_fd("send", false, false);
  std::string tag(kConnectionTag);
  tag += other.state_->readable ? 'r' : '-';
  tag += other.state_->writable ? 'w' : '-';
  tag += other.state_->is_socket ? 's' : '-';
  tag += other.state_->python_framing ? 'p' : '-';
  send_bytes(tag);
  internal::SendFd(fd, theirs);
}

Connection Connection::recv_connection() {
  const std::string tag = recv_bytes(64);
  if (tag.size() != kConnectionTag.size() + 4 || tag.rfind(kConnectionTag, 0) != 0) {
    throw Error("Connection.recv: expected a connection, got another message");
  }
  const char* flags = tag.data() + kConnectionTag.size();
  ScopedFd fd(internal::RecvFd(checked_fd("recv", true, false)));
  return Connection(std::move(fd), flags[0] == 'r', flags[1] == 'w', flags[2] == 's',
                    flags[3] == 'p');
}

void Connection::check_length(uint64_t len, size_t maxlength) {
  if (len <= maxlength) return;
  close();
  throw Error("Connection.recv_bytes: message of " + std::to_string(len) +
              " bytes is longer than maxlength " + std::to_string(maxlength) +
              "; the connection is closed");
}

std::string Connection::recv_records(size_t maxlength) {
  const int fd = state_->fd.get();
  char first[kFirstRecord];
  const size_t n = RecvRecord(fd, first, sizeof first);
  if (n == 0) throw EOFError();
  uint32_t short_len = 0;
  uint64_t len = 0;
  size_t header_len = 4;
  if (n >= 4) std::memcpy(&short_len, first, 4);
  len = short_len;
  if (short_len == kLongMessage) {
    header_len = 12;
    if (n >= 12) std::memcpy(&len, first + 4, 8);
  }
  if (n < header_len || n - header_len != std::min<uint64_t>(len, kFirstRecord - header_len)) {
    throw internal::DecodeError("Connection.recv: a malformed first record of " + std::to_string(n) +
                                " bytes");
  }
  check_length(len, maxlength);
  std::string out(first + header_len, n - header_len);
  for (size_t got = out.size(); got < len;) {
    // Grown as records arrive, not to the claimed length at once.
    out.resize(got + std::min<uint64_t>(len - got, std::max(kGrowStep, got)));
    const size_t m = RecvRecord(fd, out.data() + got, out.size() - got);
    if (m == 0) throw Error("Connection.recv: the other end closed in the middle of a message");
    got += m;
    out.resize(got);
  }
  return out;
}

std::string Connection::recv_bytes() { return recv_bytes(SIZE_MAX); }

std::string Connection::recv_bytes(size_t maxlength) {
  const int fd = checked_fd("recv", true, false);
  maxlength = std::min(maxlength, state_->max_message);
  // Records keep their boundaries, so a foreign or malformed one is skipped
  // and the connection goes on; on a byte stream nothing after a broken
  // frame can be trusted, so it is closed.
  if (state_->record_size != 0) return recv_records(maxlength);
  try {
    uint32_t short_len;
    if (!ReadExact(fd, &short_len, 4)) throw EOFError();
    uint64_t len = state_->python_framing ? be32toh(short_len) : short_len;
    if (short_len == kLongMessage) {
      if (!ReadExact(fd, &len, 8)) {
        throw Error("Connection.recv: the other end closed in the middle of a message");
      }
      if (state_->python_framing) len = be64toh(len);
    }
    check_length(len, maxlength);
    std::string out;
    for (uint64_t got = 0; got < len;) {
      // Grown as bytes arrive (doubling, from kGrowStep), not to the claimed
      // length at once: a peer that claims 4 GiB and sends nothing costs
      // nothing.
      const uint64_t step = std::min<uint64_t>(len - got, std::max<uint64_t>(kGrowStep, got));
      out.resize(got + step);
      if (!ReadExact(fd, out.data() + got, step)) {
        throw Error("Connection.recv: the other end closed in the middle of a message");
      }
      got += step;
    }
    return out;
  } catch (const EOFError&) {
    throw;
  } catch (const TimeoutError&) {
    throw;
  } catch (const Error&) {
    close();
    throw;
  } catch (const std::bad_alloc&) {
    close();
    throw Error("Connection.recv: out of memory for a message within the maximum size");
  }
}

bool Connection::poll_until(const internal::Deadline& deadline) {
  return internal::WaitReadable(checked_fd("poll", true, false), deadline);
}

void Connection::close() { state_->fd.reset(); }

bool Connection::closed() const { return !state_->fd.valid(); }

int Connection::fileno() const { return checked_fd("fileno", false, false); }

std::pair<Connection, Connection> Pipe(bool duplex) {
  if (duplex) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
    SetBuffers(fds[0]);
    SetBuffers(fds[1]);
    return {Connection(ScopedFd(fds[0]), true, true, true),
            Connection(ScopedFd(fds[1]), true, true, true)};
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  // A 64 KiB pipe buffer makes large messages 4-7x slower (MEASURING.md).
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  return {Connection(ScopedFd(fds[0]), true, false, false),
          Connection(ScopedFd(fds[1]), false, true, false)};
}

std::vector<int> wait(const std::vector<int>& fds, std::optional<std::chrono::milliseconds> timeout) {
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back({fd, POLLIN, 0});
  const internal::Deadline deadline =
      timeout ? internal::DeadlineAfter(*timeout) : internal::Deadline{};
  internal::PollUntil(polls.data(), polls.size(), deadline, "wait: poll");
  std::vector<int> ready;
  for (const pollfd& p : polls) {
    if (p.revents != 0) ready.push_back(p.fd);
  }
  return ready;
}

std::vector<Waitable> wait(const std::vector<Waitable>& objects,
                           std::optional<std::chrono::milliseconds> timeout) {
  std::vector<int> fds;
  for (const Waitable& w : objects) fds.push_back(w.fd());
  const std::vector<int> ready = wait(fds, timeout);
  std::vector<Waitable> out;
  for (const Waitable& w : objects) {
    if (std::find(ready.begin(), ready.end(), w.fd()) != ready.end()) out.push_back(w);
  }
  return out;
}

std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                           std::optional<std::chrono::milliseconds> timeout) {
  return wait(std::vector<Waitable>(objects), timeout);
}

std::vector<Connection*> wait(const std::vector<Connection*>& objects,
                              std::optional<std::chrono::milliseconds> timeout) {
  std::vector<int> fds;
  for (Connection* c : objects) fds.push_back(c->fileno());
  std::vector<int> ready = wait(fds, timeout);
  std::vector<Connection*> out;
  for (Connection* c : objects) {
    if (std::find(ready.begin(), ready.end(), c->fileno()) != ready.end()) out.push_back(c);
  }
  return out;
}

// ---- Listener and Client ----

namespace {

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
  } catch (const AuthenticationError&) {
    conn.close();
    throw;
  } catch (const Error& e) {
    conn.close();
    throw AuthenticationError(std::string("authkey handshake failed: ") + e.what());
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
  std::mutex mu;
  std::condition_variable idle;  // running dropped
  std::deque<Outcome> done;      // guarded by mu
  int running = 0;               // guarded by mu
  ScopedFd wake;                 // eventfd: an outcome is in `done`
  ScopedFd cancel;               // eventfd: the listener closes; handshakes end now
  const pid_t owner = getpid();  // a forked copy of the listener makes its own
  // The handshake threads, joined once they have posted (Reap) and at the
  // latest when the listener closes (Cancel): none outlives the listener
  // (one still exiting at the end of main() races with OpenSSL's clean-up).
  std::vector<std::thread> threads;          // guarded by mu
  std::vector<std::thread::id> posted;       // guarded by mu: threads past Post

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
  void Reap() {
    std::vector<std::thread> ending;
    {
      std::lock_guard<std::mutex> lock(mu);
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
  void Post(Outcome outcome) {
    {
      std::lock_guard<std::mutex> lock(mu);
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
  void Cancel(std::chrono::milliseconds bound) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(cancel.get(), &one, sizeof one);
    std::vector<std::thread> all;
    {
      std::unique_lock<std::mutex> lock(mu);
      if (!idle.wait_for(lock, bound, [this] { return running == 0; })) {
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

Listener::Listener(const std::string& address, std::string authkey, int backlog,
                   ConnectionOptions options)
    : authkey_(std::move(authkey)), options_(options) {
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

namespace {

// A fresh private directory (0700) for a Listener() socket.
std::string MakePrivateDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/mp-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw_errno("Listener: mkdtemp");
  return pattern;  // mkdtemp makes it 0700
}

}  // namespace

Listener::Listener() : Listener(MakePrivateDir() + "/listener") {
  private_dir_ = unix_path_.substr(0, unix_path_.rfind('/'));
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

Connection Listener::accept() {
  if (!fd_.valid()) throw Error("Listener.accept: listener is closed");
  // A copy forked into a child shares the parent's descriptors, wake-ups and
  // cancellation included: it makes its own (fileno() changes then).
  if (!handshakes_ || handshakes_->owner != getpid()) MakeHandshakeQueue();
  internal::HandshakeQueue& queue = *handshakes_;
  for (;;) {
    queue.Reap();
    bool room;
    {
      std::lock_guard<std::mutex> lock(queue.mu);
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
    if (::poll(polls, room ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("Listener.accept: poll");
    }
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
      last_accepted_ = PeerAddress(peer);
      return conn;
    }
    {
      std::lock_guard<std::mutex> lock(queue.mu);
      ++queue.running;
    }
    try {
      std::lock_guard<std::mutex> lock(queue.mu);
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
      std::lock_guard<std::mutex> lock(queue.mu);
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
  Authenticate(conn, authkey, /*server=*/false, options.handshake_timeout);
  return conn;
}

}  // namespace mp
