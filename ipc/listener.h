// Listener and Client: connections between processes that are not parent
// and child, over a Unix socket or TCP, with Python's authkey handshake and
// wire format. Python: multiprocessing.connection.Listener and Client.
//
// Thread safety: accept() from one thread at a time; close() must not race
//   with accept(). Client() is thread-safe.
// Fork safety: a child that inherits a Listener can accept on it (it makes its
//   own handshake threads); Connections behave as ipc/pipe.h says.
// Sharing: the listening socket is inherited by children created after it.
#ifndef IPC_LISTENER_H_
#define IPC_LISTENER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "base/deadline.h"
#include "base/descriptors.h"
#include "base/scoped_fd.h"
#include "ipc/pipe.h"

namespace mp {

// Keyword arguments of Listener and Client.
struct ConnectionOptions {
  // How long the authkey handshake may take, on either side; a silent or
  // slow peer then fails with mp::AuthenticationError.
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(20);
  // Connection::set_max_message_size for the connections made.
  size_t max_message_size = kDefaultMaxMessageSize;
};

namespace internal {
struct HandshakeQueue;

// A listener's parts, to hand it to another process (a manager's server
// started by spawn or forkserver): its listening descriptor travels as a
// shared object (base/descriptors.h). The receiver owns the socket file
// and private directory as a forked copy does: it removes them on close.
struct ListenerParts {
  std::shared_ptr<ScopedFd> fd;  // shared: the parts are copied like any Process argument
  std::string address;
  std::string authkey;
  std::string unix_path;
  std::string private_dir;
  std::chrono::milliseconds handshake_timeout{0};
  size_t max_message_size = 0;
  template <class Archive>
  void save(Archive& ar) const {
    ar(SaveDescriptor(fd ? fd->get() : -1, "a Listener"), address, authkey, unix_path, private_dir, handshake_timeout,
       max_message_size);
  }
  template <class Archive>
  void load(Archive& ar) {
    uint32_t index = 0;
    ar(index, address, authkey, unix_path, private_dir, handshake_timeout, max_message_size);
    fd = std::make_shared<ScopedFd>(LoadDescriptor(index, "Listener"));
  }
};
}  // namespace internal

// Listener: accepts connections on a Unix socket path or a "host:port" TCP
// address (port 0 picks a free port; address() then tells which). With a
// non-empty authkey, each side proves it knows the key before any user data,
// with Python's handshake (an HMAC challenge in both directions: HMAC-SHA256
// with the "{sha256}" prefix of Python 3.12+, and the HMAC-MD5 answers of
// Python 3.11 and older accepted), within options.handshake_timeout; a wrong
// key or a silent peer throws mp::AuthenticationError and the connection is
// closed. A key on one side only fails on both: the keyed side in its
// handshake, the other at its first receive (a keyless client that gets a
// challenge; a keyless listener's connection whose client, having waited in
// vain for one, sent Python's "#FAILURE#" as it left). Messages are framed as Python frames them (big-endian lengths), so
// a Python Client or Listener can be the other end. Removes its socket file
// when destroyed. Python: multiprocessing.connection.Listener.
class Listener {
 public:
  explicit Listener(const std::string& address, std::string authkey = "", int backlog = 128,
                    ConnectionOptions options = {});
  // Listener() (or an empty address) listens on a fresh Unix socket in a
  // private directory (mode 0700, under $TMPDIR, or /tmp if $TMPDIR is too
  // long for a socket path), both removed on close. Python: Listener(),
  // Listener(authkey=...).
  Listener();
  ~Listener();
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;

  // Listener(parts) takes over a listener another process sent (see
  // internal::ListenerParts); parts() describes this one (its descriptor
  // duplicated) for sending.
  explicit Listener(internal::ListenerParts parts);
  internal::ListenerParts parts() const;

  // accept blocks for the next client and authenticates it. Handshakes run
  // side by side (each on a thread of its own, at most kMaxHandshakes at
  // once), so a silent or slow client never delays another's accept(): the
  // first to finish is returned. A client that fails the handshake (wrong
  // key, or silent past handshake_timeout) makes accept() throw
  // mp::AuthenticationError, as Python's does; call it again for the next.
  Connection accept();
  // accept(timeout): the same, waiting at most `timeout` (zero: only what is
  // ready now) for a client to come and finish its handshake; nullopt if
  // none did. For loops that also watch other descriptors: fileno() may be
  // readable with nothing to hand out yet (a handshake under way).
  template <class Rep, class Period>
  std::optional<Connection> accept(std::chrono::duration<Rep, Period> timeout) {
    return AcceptUntil(internal::DeadlineAfter(timeout));
  }
  // last_accepted is the address of the client accept() last returned
  // ("ip:port", or "" for a Unix socket). Python: Listener.last_accepted.
  const std::string& last_accepted() const { return last_accepted_; }
  static constexpr int kMaxHandshakes = 64;
  // address is where clients connect (the real port when 0 was asked).
  const std::string& address() const { return address_; }
  // fileno is readable when accept() has something to hand out (a new
  // client or a finished handshake), for poll/select loops around accept().
  // In a child that inherited the listener, it changes at the first
  // accept(): ask for it again each time round such a loop.
  int fileno() const { return ready_fd_.get(); }
  // close stops listening and removes the socket file.
  void close();
  // close_socket closes only this process's listening descriptor, keeping the
  // socket file for a copy of the listener that a child process serves
  // (clients must not queue up on a descriptor nobody accepts from).
  void close_socket() {
    fd_.reset();
    ready_fd_.reset();
  }

 private:
  std::optional<Connection> AcceptUntil(const internal::Deadline& deadline);
  void MakeHandshakeQueue();

  internal::ScopedFd fd_;
  std::string address_;
  std::string authkey_;
  std::string unix_path_;  // removed on close
  std::string private_dir_;  // made by Listener(), removed on close
  ConnectionOptions options_;
  std::string last_accepted_;
  std::shared_ptr<internal::HandshakeQueue> handshakes_;  // see accept()
  internal::ScopedFd ready_fd_;  // epoll over fd_ and the handshakes' wake-up: fileno()
};

// Client connects to a Listener's address (an mp::Listener or a Python one)
// and authenticates with `authkey` within options.handshake_timeout.
// Python: multiprocessing.connection.Client.
Connection Client(const std::string& address, const std::string& authkey = "",
                  ConnectionOptions options = {});

namespace internal {
// The authkey handshake on a fresh connection (both directions), Python's
// (see Listener); each recv waits until `deadline` at most.
void DeliverChallenge(Connection& conn, const std::string& authkey, const Deadline& deadline);
void AnswerChallenge(Connection& conn, const std::string& authkey, const Deadline& deadline);
}  // namespace internal

}  // namespace mp

#endif  // IPC_LISTENER_H_
