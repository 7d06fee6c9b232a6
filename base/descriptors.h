// Descriptors that travel inside encoded values.
//
// Internal to the library. A shared object (a Lock, a Queue, a Connection)
// is encoded as an index into the descriptors sent along with the bytes:
// the transports that can carry descriptors (a Unix socket Connection, the
// start channel of a spawn or forkserver child, a Pool's task courier) put a
// DescriptorSink in place while they encode, send what it collected with
// SCM_RIGHTS, and put a DescriptorSource of the received descriptors in place
// while the receiver decodes. Anywhere else (a Queue item, a manager value)
// encoding such an object is an mp::ValueError that says where it can go,
// as Python's "should only be shared between processes through inheritance".
//
// Thread safety: the sink and source in place are per thread.
// Fork safety: nothing to share.
// Sharing: n/a.
#ifndef BASE_DESCRIPTORS_H_
#define BASE_DESCRIPTORS_H_

#include <cstdint>
#include <vector>

#include "base/scoped_fd.h"

namespace mp::internal {

// The most descriptors one message carries (the kernel's SCM_MAX_FD).
inline constexpr size_t kMaxDescriptorsPerMessage = 253;

// DescriptorSink: the descriptors (duplicated, close-on-exec) of what is
// being encoded, in order.
class DescriptorSink {
 public:
  // Add duplicates `fd` and returns its index. mp::Error if `fd` is not
  // open; mp::ValueError past kMaxDescriptorsPerMessage.
  uint32_t Add(int fd);
  const std::vector<ScopedFd>& fds() const { return fds_; }
  bool empty() const { return fds_.empty(); }
  std::vector<ScopedFd> Release() { return std::move(fds_); }

 private:
  std::vector<ScopedFd> fds_;
};

// DescriptorSource: received descriptors, each taken at most once.
class DescriptorSource {
 public:
  DescriptorSource() = default;
  explicit DescriptorSource(std::vector<ScopedFd> fds) : fds_(std::move(fds)) {}
  // Take hands over descriptor `index`; mp::Error (a decode error) if there
  // is no such descriptor or it was taken before: the bytes lie.
  ScopedFd Take(uint32_t index);
  size_t size() const { return fds_.size(); }
  std::vector<ScopedFd> Release() { return std::move(fds_); }

 private:
  std::vector<ScopedFd> fds_;
};

// While a ScopedDescriptorSink lives, SaveDescriptor on this thread adds to
// `sink` (they nest: the innermost wins).
class ScopedDescriptorSink {
 public:
  explicit ScopedDescriptorSink(DescriptorSink* sink);
  ~ScopedDescriptorSink();
  ScopedDescriptorSink(const ScopedDescriptorSink&) = delete;
  ScopedDescriptorSink& operator=(const ScopedDescriptorSink&) = delete;

 private:
  DescriptorSink* previous_;
};

class ScopedDescriptorSource {
 public:
  explicit ScopedDescriptorSource(DescriptorSource* source);
  ~ScopedDescriptorSource();
  ScopedDescriptorSource(const ScopedDescriptorSource&) = delete;
  ScopedDescriptorSource& operator=(const ScopedDescriptorSource&) = delete;

 private:
  DescriptorSource* previous_;
};

// RawFds: the numbers of `fds`, for sendmsg.
std::vector<int> RawFds(const std::vector<ScopedFd>& fds);

// EncodeCollecting runs `encode` (which returns the bytes) with a sink in
// place, and moves the descriptors it collected to *fds.
template <class Encode>
auto EncodeCollecting(Encode&& encode, std::vector<ScopedFd>* fds) {
  DescriptorSink sink;
  auto bytes = [&] {
    ScopedDescriptorSink collecting(&sink);
    return encode();
  }();
  *fds = sink.Release();
  return bytes;
}

// SaveDescriptor adds `fd` to the sink in place and returns its index;
// without one it throws mp::ValueError naming `what` and where it can go.
uint32_t SaveDescriptor(int fd, const char* what);
// LoadDescriptor takes descriptor `index` from the source in place; without
// one (or for a bad index) it throws a decode error naming `what`.
ScopedFd LoadDescriptor(uint32_t index, const char* what);

}  // namespace mp::internal

#endif  // BASE_DESCRIPTORS_H_
