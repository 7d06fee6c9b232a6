#include "pool/mpi_protocol.h"

#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>

#include "base/errors.h"

namespace mp::internal::mpi {
namespace {

void Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw ProcessError(std::string(what) + ": " + std::string(text, static_cast<size_t>(length)));
}

Message ReceiveProbed(const MPI_Status& status) {
  int count = 0;
  Check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  Message message{status.MPI_SOURCE, status.MPI_TAG, std::string(static_cast<size_t>(count), '\0')};
  Check(MPI_Recv(message.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "MPI_Recv");
  return message;
}

}  // namespace

void Send(int dest, Tag tag, const std::string& bytes) {
  Check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD),
        "MPI_Send");
}

std::optional<Message> TryReceive(int source) {
  int flag = 0;
  MPI_Status status;
  Check(MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  return ReceiveProbed(status);
}

Message Receive(int source, Tag tag) {
  MPI_Status status;
  Check(MPI_Probe(source, tag, MPI_COMM_WORLD, &status), "MPI_Probe");
  return ReceiveProbed(status);
}

void Ring(int fd) {
  const char ring = 1;
  for (;;) {
    if (::send(fd, &ring, 1, MSG_NOSIGNAL) == 1) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // The peer is gone.
    // A full buffer (the peer is busy): wait for room, as a blocking send would.
    pollfd writable{fd, POLLOUT, 0};
    ::poll(&writable, 1, -1);
  }
}

int Drain(int fd, bool* closed) {
  char rings[256];
  int total = 0;
  *closed = false;
  for (;;) {
    const ssize_t n = ::recv(fd, rings, sizeof rings, MSG_DONTWAIT);
    if (n > 0) {
      total += static_cast<int>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    *closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    return total;
  }
}

void Backoff::Wait(const std::vector<int>& fds) {
  using std::chrono::microseconds;
  if (next_ == microseconds(0)) {
    sched_yield();  // The first miss: let a rank on this CPU run.
    next_ = microseconds(10);
    return;
  }
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back({fd, POLLIN, 0});
  const timespec timeout{0, static_cast<long>(next_.count()) * 1000};
  ppoll(polls.data(), polls.size(), &timeout, nullptr);
  next_ = std::min(next_ * 2, max_sleep_);
}

}  // namespace mp::internal::mpi
