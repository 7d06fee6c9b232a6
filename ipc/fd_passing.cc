#include "ipc/fd_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/errors.h"

namespace mp::internal {

namespace {

// One byte of data with room for one descriptor: the message both sides use.
struct OneFdMessage {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  OneFdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  OneFdMessage(const OneFdMessage&) = delete;
  OneFdMessage& operator=(const OneFdMessage&) = delete;
};

}  // namespace

void SendFd(int socket, int fd) {
  OneFdMessage m;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  while (sendmsg(socket, &m.msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) throw_errno("sendmsg");
  }
}

int RecvFd(int socket) {
  OneFdMessage m;
  ssize_t n;
  while ((n = recvmsg(socket, &m.msg, MSG_CMSG_CLOEXEC)) < 0) {
    if (errno != EINTR) throw_errno("recvmsg");
  }
  cmsghdr* cmsg = CMSG_FIRSTHDR(&m.msg);
  if (n != 1 || cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) {
    throw Error("expected a file descriptor");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

}  // namespace mp::internal
