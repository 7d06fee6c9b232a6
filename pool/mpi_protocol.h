// What rank 0 and the worker ranks of an MPI pool say to each other, and the
// few MPI calls they need.
//
// Internal to //pool:mpi. Messages are the codec's bytes (ipc/codec.h) sent
// as MPI_BYTE: raw MPI calls rather than Boost.MPI's send/recv of a
// std::string, which would serialize the bytes a second time through
// Boost.Serialization. Boost.MPI still owns the environment (init, thread
// level, finalize).
#ifndef POOL_MPI_PROTOCOL_H_
#define POOL_MPI_PROTOCOL_H_

#include <mpi.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ipc/codec.h"
#include "process/function_id.h"

namespace mp::internal::mpi {

enum Tag : int {
  // rank 0 -> worker rank
  kStart = 1,   // StartMessage: host a pool's worker
  kTasks,       // std::vector<WireTask>
  kClose,       // finish the queued tasks, then end the worker
  kTerminate,   // end the worker now
  kShutdown,    // leave the serving loop (the program is exiting)
  kLiveness,    // Liveness, once, to each rank mp::mpi::init accepted
  // worker rank -> rank 0
  kHello,       // Hello, once, from mp::mpi::init
  kOutcomes,    // std::vector<Outcome>
  kEnded,       // the worker of the current pool has ended (after kClose/kTerminate)
};

// Rank 0's greeting, broadcast by mp::mpi::init.
struct Greeting {
  std::string build_id;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(build_id);
  }
};

// Where an accepted worker rank connects to tell rank 0 it lives: a Unix
// socket when every rank runs on rank 0's host, else rank 0's host name and
// a TCP port; either way behind the authkey handshake.
struct Liveness {
  std::string address;
  std::string authkey;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(address, authkey);
  }
};

// A worker rank's answer.
struct Hello {
  int rank = 0;
  bool same_binary = false;
  std::string build_id;
  std::string host;
  int64_t pid = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(rank, same_binary, build_id, host, pid);
  }
};

struct StartMessage {
  std::optional<CodeRef> initializer;
  int maxtasksperchild = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(initializer, maxtasksperchild);
  }
};

// A task as it crosses ranks: code is named, not addressed (ASLR).
struct WireTask {
  uint64_t id = 0;
  CodeRef entry;
  CodeRef function;
  std::string args;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, entry, function, args);
  }
};

// A message that arrived.
struct Message {
  int source = 0;
  int tag = 0;
  std::string bytes;
};

// Send blocks until `bytes` may be reused (MPI_Send).
void Send(int dest, Tag tag, const std::string& bytes);
// TryReceive takes the next message from `source` (MPI_ANY_SOURCE for any),
// or returns nullopt at once when none has arrived.
std::optional<Message> TryReceive(int source);
// Receive blocks for the next message from `source` with `tag`.
Message Receive(int source, Tag tag);

// Doorbells. Each worker rank holds a TCP connection to rank 0 (opened by
// mp::mpi::init) that tells rank 0 when the rank's process is gone (EOF).
// It doubles as a doorbell: a byte is written to it before each MPI message,
// so the receiver knows how many messages are on their way. With none
// announced (and no send of its own in progress) it sleeps in poll() with no
// timeout; otherwise it probes, with Backoff, until they have arrived.
void Ring(int fd);
// Drain reads the rings so far and returns how many; *closed tells whether
// the peer has gone (its last rings may come just before that).
int Drain(int fd, bool* closed);

// Backoff paces a loop that waits for announced MPI messages. Open MPI has
// no receive that sleeps: a blocking MPI_Recv spins in its progress engine
// and, on a machine with fewer cores than ranks, takes the CPU from the ranks
// doing the work. So waiting loops probe, then sleep in ppoll() on their own
// descriptors (which wake them at once) for a time that doubles from 10 us
// up to `max_sleep`; any progress resets it.
class Backoff {
 public:
  explicit Backoff(std::chrono::microseconds max_sleep) : max_sleep_(max_sleep) {}
  void Reset() { next_ = std::chrono::microseconds(0); }
  // Wait sleeps until one of `fds` is readable or the current delay passes.
  void Wait(const std::vector<int>& fds);

 private:
  std::chrono::microseconds max_sleep_;
  std::chrono::microseconds next_{0};
};

}  // namespace mp::internal::mpi

#endif  // POOL_MPI_PROTOCOL_H_
