#include "ipc/pipe.h"

#include <endian.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/deadline.h"
#include "base/descriptors.h"
#include "base/errors.h"

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
// Descriptors a message brought (SCM_RIGHTS), collected from every receive
// on a socket: a recvmsg with room for as many as one message may carry.
struct ControlBuffer {
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(int) * internal::kMaxDescriptorsPerMessage)];
};

// Attaches `fds` (SCM_RIGHTS) to `msg`, in `control`.
void AttachDescriptors(msghdr& msg, ControlBuffer& control, std::span<const int> fds) {
  if (fds.empty()) return;
  msg.msg_control = control.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
}

// `fds` go with the first bytes (sockets only).
void WriteAll(int fd, bool is_socket, iovec* iov, int iovcnt, std::span<const int> fds = {}) {
  std::optional<SigpipeGuard> guard;
  if (!is_socket) guard.emplace();
  while (iovcnt > 0) {
    ssize_t n;
    if (is_socket) {
      ControlBuffer control;
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iovcnt);
      AttachDescriptors(msg, control, fds);
      n = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (n > 0) fds = {};  // sent with the first byte
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

// Keeps the descriptors that `msg` carried in *arrived (closing what does
// not fit), and fails if some were cut off: a message is taken whole or not
// at all.
void CollectDescriptors(msghdr& msg, std::vector<ScopedFd>* arrived) {
  bool overflow = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      ScopedFd owned(fd);
      if (arrived->size() < internal::kMaxDescriptorsPerMessage) {
        arrived->push_back(std::move(owned));
      } else {
        overflow = true;  // closed by `owned`
      }
    }
  }
  if (overflow) {
    throw internal::DecodeError("Connection.recv: a message came with more descriptors than " +
                                std::to_string(internal::kMaxDescriptorsPerMessage));
  }
}

// One receive: read(2) on a pipe (arrived == nullptr), else recvmsg(2),
// keeping the descriptors that came along.
ssize_t ReceiveSome(int fd, void* data, size_t size, int flags, std::vector<ScopedFd>* arrived) {
  if (arrived == nullptr) return ::read(fd, data, size);
  ControlBuffer control;
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  const ssize_t n = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n >= 0 && msg.msg_controllen > 0) CollectDescriptors(msg, arrived);
  return n;
}

// Reads exactly `size` bytes. Returns false on EOF before the first byte;
// throws on EOF in the middle.
bool ReadExact(int fd, void* data, size_t size, std::vector<ScopedFd>* arrived) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < size) {
    ssize_t n = ReceiveSome(fd, p + got, size - got, 0, arrived);
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

// Sends one record (all of it or nothing: SOCK_SEQPACKET), with `fds`.
void SendRecord(int fd, iovec* iov, int iovcnt, std::span<const int> fds = {}) {
  ControlBuffer control;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(iovcnt);
  AttachDescriptors(msg, control, fds);
  while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) ThrowSendError("Connection.send");
  }
}

// Receives one record of at most `size` bytes into `data`; returns its
// length (0: the other end closed). A longer record fails: it is not one of
// this framing's.
size_t RecvRecord(int fd, char* data, size_t size, std::vector<ScopedFd>* arrived) {
  for (;;) {
    // MSG_TRUNC: the record's real length, even if longer than `size`.
    const ssize_t n = ReceiveSome(fd, data, size, MSG_TRUNC, arrived);
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

Connection::Connection()
    : state_(std::make_shared<State>(State{ScopedFd(), false, false, false, 0, false})) {}

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

void Connection::send_bytes(std::string_view bytes) { send_message(bytes, {}); }

void Connection::send_message(std::string_view bytes, std::span<const int> fds) {
  const int fd = checked_fd("send", false, true);
  if (!fds.empty() && !state_->is_socket) {
    throw ValueError(
        "Connection.send: queues, locks, connections and other shared objects travel only over a "
        "socket connection (a duplex Pipe, a Listener's or Client's), not a simplex pipe");
  }
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
    SendRecord(fd, first, sent == 0 ? 1 : 2, fds);
    while (sent < bytes.size()) {
      const size_t n = std::min(state_->record_size, bytes.size() - sent);
      iovec piece{const_cast<char*>(bytes.data()) + sent, n};
      SendRecord(fd, &piece, 1);
      sent += n;
    }
    return;
  }
  iovec iov[2] = {{header, header_len}, {const_cast<char*>(bytes.data()), bytes.size()}};
  WriteAll(fd, state_->is_socket, iov, bytes.empty() ? 1 : 2, fds);
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

void Connection::send(const Connection& other) { send<Connection>(other); }

internal::DescriptorSource Connection::take_arrived_descriptors() {
  return internal::DescriptorSource(std::move(state_->arrived));
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
  const size_t n = RecvRecord(fd, first, sizeof first, &state_->arrived);
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
  size_t got = out.size();
  while (got < len) {
    // Grown as records arrive (doubling, from kGrowStep), not to the
    // claimed length at once; each byte is zero-filled once, and there is
    // always room for a whole record (a receive asks for all that is
    // missing, and a record never holds more than its message).
    if (out.size() - got < std::min<uint64_t>(len - got, kMaxRecord)) {
      out.resize(got + std::min<uint64_t>(len - got, std::max(kGrowStep, got)));
    }
    const size_t m = RecvRecord(fd, out.data() + got, out.size() - got, &state_->arrived);
    if (m == 0) throw Error("Connection.recv: the other end closed in the middle of a message");
    got += m;
  }
  out.resize(got);
  return out;
}

namespace internal {
void RefuseFirstMessage(Connection& conn, std::string prefix, std::string why) {
  conn.state_->refuse_first_prefix = std::move(prefix);
  conn.state_->refuse_first_why = std::move(why);
}
}  // namespace internal

std::string Connection::recv_bytes() { return recv_bytes(SIZE_MAX); }

std::string Connection::recv_bytes(size_t maxlength) {
  const int fd = checked_fd("recv", true, false);
  maxlength = std::min(maxlength, state_->max_message);
  // Descriptors that came with an earlier message and were not decoded
  // (recv_bytes of a message that carried some) are closed here.
  state_->arrived.clear();
  std::vector<ScopedFd>* arrived = state_->is_socket ? &state_->arrived : nullptr;
  // Records keep their boundaries, so a foreign or malformed one is skipped
  // and the connection goes on; on a byte stream nothing after a broken
  // frame can be trusted, so it is closed.
  if (state_->record_size != 0) return recv_records(maxlength);
  try {
    uint32_t short_len;
    if (!ReadExact(fd, &short_len, 4, arrived)) throw EOFError();
    uint64_t len = state_->python_framing ? be32toh(short_len) : short_len;
    if (short_len == kLongMessage) {
      if (!ReadExact(fd, &len, 8, arrived)) {
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
      if (!ReadExact(fd, out.data() + got, step, arrived)) {
        throw Error("Connection.recv: the other end closed in the middle of a message");
      }
      got += step;
    }
    if (!state_->refuse_first_prefix.empty()) {
      const bool refused = out.starts_with(state_->refuse_first_prefix);
      state_->refuse_first_prefix.clear();
      if (refused) throw AuthenticationError(state_->refuse_first_why);  // closes, below
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

}  // namespace mp
