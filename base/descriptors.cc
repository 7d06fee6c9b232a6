#include "base/descriptors.h"

#include <fcntl.h>

#include <string>

#include "base/errors.h"

namespace mp::internal {
namespace {

thread_local DescriptorSink* t_sink = nullptr;
thread_local DescriptorSource* t_source = nullptr;

}  // namespace

uint32_t DescriptorSink::Add(int fd) {
  if (fds_.size() >= kMaxDescriptorsPerMessage) {
    throw ValueError("a message can carry at most " + std::to_string(kMaxDescriptorsPerMessage) +
                     " shared objects (queues, locks, connections, ...)");
  }
  ScopedFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy.valid()) throw_errno("encode: dup of a shared object's descriptor");
  fds_.push_back(std::move(copy));
  return static_cast<uint32_t>(fds_.size() - 1);
}

std::vector<int> RawFds(const std::vector<ScopedFd>& fds) {
  std::vector<int> out;
  out.reserve(fds.size());
  for (const ScopedFd& fd : fds) out.push_back(fd.get());
  return out;
}

ScopedFd DescriptorSource::Take(uint32_t index) {
  if (index >= fds_.size() || !fds_[index].valid()) {
    throw Error("decode: the message names shared-object descriptor " + std::to_string(index) +
                ", which did not come with it (or was used twice)");
  }
  return std::move(fds_[index]);
}

ScopedDescriptorSink::ScopedDescriptorSink(DescriptorSink* sink) : previous_(t_sink) { t_sink = sink; }
ScopedDescriptorSink::~ScopedDescriptorSink() { t_sink = previous_; }
ScopedDescriptorSource::ScopedDescriptorSource(DescriptorSource* source) : previous_(t_source) {
  t_source = source;
}
ScopedDescriptorSource::~ScopedDescriptorSource() { t_source = previous_; }

uint32_t SaveDescriptor(int fd, const char* what) {
  if (t_sink == nullptr) {
    throw ValueError(std::string(what) +
                     " can be passed to another process only as a Process argument, a Pool task "
                     "argument or over a Connection (a Unix socket), not inside a Queue item or a "
                     "manager value");
  }
  if (fd < 0) {
    throw ValueError(std::string(what) +
                     " has no descriptor to pass: it was made under a file-size limit "
                     "(RLIMIT_FSIZE) smaller than its memory, so it is shared with forked children only");
  }
  return t_sink->Add(fd);
}

ScopedFd LoadDescriptor(uint32_t index, const char* what) {
  if (t_source == nullptr) {
    throw Error(std::string("decode: a ") + what +
                " arrived without its descriptor (it can only come as a Process or task argument "
                "or over a Connection)");
  }
  return t_source->Take(index);
}

}  // namespace mp::internal
