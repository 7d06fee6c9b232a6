// Pipe, Connection and wait: the part of Python's multiprocessing.connection
// that needs no network (Listener and Client are in ipc/listener.h; include
// ipc/connection.h for the whole module).
//
// A Connection sends whole messages over a socket or pipe: typed values
// through the codec (send/recv), or raw bytes (send_bytes/recv_bytes). Each
// message is framed with its length, so any size works (many MiB included),
// whatever the kernel's buffer, partial writes or EINTR.
//
//   auto [parent_conn, child_conn] = mp::Pipe();
//   mp::Process p([&] { child_conn.send(std::string("hello")); });
//   p.start();
//   std::string s = parent_conn.recv<std::string>();
//
// recv after the peer closed throws mp::EOFError once every message sent
// before the close has been received. A message that does not decode as the
// requested type throws mp::Error. A broken frame on a byte stream (a
// Listener's or Client's connection, a simplex Pipe) throws mp::Error and
// closes the connection; a duplex Pipe keeps message boundaries, so it skips
// a foreign record and goes on. Sending to a closed peer throws mp::Error;
// it never kills the process with SIGPIPE.
//
// Thread safety: one sender and one receiver thread at a time per connection
//   (as in Python); close() must not race with other calls.
// Fork safety: a child inherits the connection; copies in parent and child
//   refer to the same kernel object, as with Python's fork.
// Sharing: inherited by children created after it; copies of the handle share
//   one descriptor (closing one closes it for all copies in this process).
#ifndef IPC_PIPE_H_
#define IPC_PIPE_H_

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/descriptors.h"
#include "base/scoped_fd.h"
#include "ipc/codec.h"
#include "sync/futex.h"

namespace mp {

// The largest message a Connection receives unless told otherwise
// (set_max_message_size, or recv_bytes(maxlength) per call). Python has no
// such bound; a peer that claims 4 GiB can then make it allocate 4 GiB.
inline constexpr size_t kDefaultMaxMessageSize = size_t{1} << 30;

class Connection;
namespace internal {
// RefuseFirstMessage: if the first message `conn` receives starts with
// `prefix`, it is not handed out: the connection closes and recv throws
// mp::AuthenticationError(why). For Listener and Client connections made
// without an authkey, whose peer wants one (ipc/listener.cc).
void RefuseFirstMessage(Connection& conn, std::string prefix, std::string why);
}  // namespace internal

class Connection {
 public:
  // Connection takes ownership of `fd`. `is_socket` selects send(2) with
  // MSG_NOSIGNAL; otherwise writes block SIGPIPE around themselves. On a
  // SOCK_SEQPACKET socket (a duplex Pipe) messages travel in records.
  // `python_framing` (Listener and Client connections): lengths are sent
  // big-endian, as Python's multiprocessing.connection does, so a Python
  // program can be the peer; otherwise in the machine's order.
  Connection(internal::ScopedFd fd, bool readable, bool writable, bool is_socket,
             bool python_framing = false);

  // set_max_message_size bounds the messages recv/recv_bytes take (default
  // kDefaultMaxMessageSize): a longer one closes the connection and throws
  // mp::Error. Memory grows with the bytes that arrive, never with what a
  // message's header claims.
  void set_max_message_size(size_t bytes) { state_->max_message = bytes; }

  // Connection() is closed (a placeholder to decode into).
  Connection();

  // send encodes `value` and sends it as one message. Shared objects in it
  // (queues, locks, events, values, connections, ...) travel as their
  // descriptors (SCM_RIGHTS; this connection must then be a Unix socket,
  // else mp::ValueError) and the receiver gets the same objects.
  template <class T>
  void send(const T& value) {
    std::vector<internal::ScopedFd> fds;
    const std::string bytes = internal::EncodeCollecting([&] { return encode(value); }, &fds);
    send_message(bytes, internal::RawFds(fds));
  }
  // recv blocks for the next message and decodes it as a T.
  template <class T>
  T recv() {
    std::string bytes = recv_bytes();
    internal::DescriptorSource source = take_arrived_descriptors();
    internal::ScopedDescriptorSource using_them(&source);
    return decode<T>(bytes);
  }

  // send_message sends `bytes` with descriptors `fds` (for the library's
  // own channels); take_arrived_descriptors hands over those that came with
  // the message last received (the rest are closed at the next receive).
  void send_message(std::string_view bytes, std::span<const int> fds);
  internal::DescriptorSource take_arrived_descriptors();

  // A Connection is encoded as its descriptor (see send(other)).
  template <class Archive>
  void save(Archive& ar) const {
    const int fd = checked_fd("send", false, false);
    ar(internal::SaveDescriptor(fd, "a Connection"), state_->readable, state_->writable,
       state_->is_socket, state_->python_framing);
  }
  template <class Archive>
  void load(Archive& ar) {
    uint32_t index = 0;
    bool readable = false, writable = false, is_socket = false, python_framing = false;
    ar(index, readable, writable, is_socket, python_framing);
    *this = Connection(internal::LoadDescriptor(index, "Connection"), readable, writable, is_socket,
                       python_framing);
  }

  // send_bytes sends `bytes` as one message.
  void send_bytes(std::string_view bytes);
  // send_bytes(buf, offset, size): the `size` bytes of `buf` from `offset`
  // (all the rest by default); mp::ValueError if they are not all in `buf`.
  // Python: send_bytes(buf, offset, size).
  void send_bytes(std::string_view buf, size_t offset, size_t size = std::string_view::npos);
  // recv_bytes_into reads the next message into `buf` from `offset` on and
  // returns its length. A message longer than the room throws
  // mp::BufferTooShort, which holds the message. Python: recv_bytes_into.
  size_t recv_bytes_into(std::span<char> buf, size_t offset = 0);

  // send(other) sends a connection itself (its descriptor travels with
  // SCM_RIGHTS; this connection must be a Unix socket): the receiver's
  // recv<Connection>() gets a connection to the same peer. Python 3.3+:
  // conn.send(other_conn). Connections inside other values travel too.
  void send(const Connection& other);
  // recv_bytes blocks for the next message and returns its bytes.
  std::string recv_bytes();
  // recv_bytes(maxlength): a longer message closes the connection and throws
  // mp::Error (Python: recv_bytes(maxlength), which raises OSError).
  std::string recv_bytes(size_t maxlength);

  // poll is true when a message (or EOF) is ready to be read. poll() does not
  // block; poll(timeout) waits up to `timeout`.
  bool poll() { return poll_until(internal::Clock::now()); }
  template <class Rep, class Period>
  bool poll(std::chrono::duration<Rep, Period> timeout) {
    return poll_until(internal::DeadlineAfter(timeout));
  }

  // close closes the descriptor (for every copy of this handle).
  void close();
  bool closed() const;
  bool readable() const { return state_->readable; }
  bool writable() const { return state_->writable; }
  // fileno is the descriptor, for select/poll/Asio and mp::wait.
  int fileno() const;

  bool poll_until(const internal::Deadline& deadline);

 private:
  struct State {
    internal::ScopedFd fd;
    bool readable;
    bool writable;
    bool is_socket;
    size_t record_size;  // SOCK_SEQPACKET: messages in records (connection.cc); else 0
    bool python_framing;
    size_t max_message = kDefaultMaxMessageSize;
    // internal::RefuseFirstMessage: a first message that starts so is an
    // mp::AuthenticationError (empty: none is; cleared at the first message).
    std::string refuse_first_prefix;
    std::string refuse_first_why;
    std::vector<internal::ScopedFd> arrived;  // descriptors of the last message received
  };
  friend void internal::RefuseFirstMessage(Connection& conn, std::string prefix, std::string why);
  std::string recv_records(size_t maxlength);
  // check_length closes the connection and throws if a message of `len`
  // bytes exceeds `maxlength` (it is not read).
  void check_length(uint64_t len, size_t maxlength);
  int checked_fd(const char* what, bool want_read, bool want_write) const;
  std::shared_ptr<State> state_;
};

// Pipe returns a connected pair. duplex (default): both ends send and receive
// (a Unix SOCK_SEQPACKET socketpair, where a small message takes one system
// call to receive instead of two). Simplex: the first receives, the second
// sends (a pipe whose buffer is enlarged to 1 MiB when the system allows).
std::pair<Connection, Connection> Pipe(bool duplex = true);

// wait returns the connections (or descriptors) among `objects` that are ready
// to read, waiting up to `timeout` (forever without one) for at least one.
// Process sentinels are descriptors: pass p.sentinel().
std::vector<Connection*> wait(const std::vector<Connection*>& objects,
                              std::optional<std::chrono::milliseconds> timeout = std::nullopt);
std::vector<int> wait(const std::vector<int>& fds,
                      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
inline std::vector<Connection*> wait(std::initializer_list<Connection*> objects,
                                     std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  return wait(std::vector<Connection*>(objects), timeout);
}

// Waitable: one of the things mp::wait watches together, as Python's
// connection.wait does: a Connection, or a descriptor (a process's
// sentinel(), a socket, any fd).
//
//   for (mp::Waitable& w : mp::wait({&conn, p.sentinel(), sock}, 5s))
//     if (w.connection() == &conn) ...; else if (w.fd() == p.sentinel()) ...;
class Waitable {
 public:
  Waitable(Connection* connection) : connection_(connection), fd_(connection->fileno()) {}  // NOLINT
  Waitable(int fd) : fd_(fd) {}  // NOLINT: a descriptor
  Connection* connection() const { return connection_; }  // null for a descriptor
  int fd() const { return fd_; }

 private:
  Connection* connection_ = nullptr;
  int fd_;
};

// wait over any mix: returns the ready ones, in the order given.
std::vector<Waitable> wait(std::initializer_list<Waitable> objects,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt);
std::vector<Waitable> wait(const std::vector<Waitable>& objects,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt);

}  // namespace mp

#endif  // IPC_PIPE_H_
