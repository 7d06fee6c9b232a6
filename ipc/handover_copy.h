// HandOverCopy: copying bytes into shared memory that another process reads
// next, and this one never again (a queue's ring).
//
// Internal to //ipc. An ordinary copy leaves the bytes in the writer's cache,
// from where the reader must fetch them line by line. Once an item is as
// large as this CPU's L2 cache, the source, the ring and the reader's copy
// no longer fit there together, and on this machine (MEASURING.md) such
// transfers between CPUs fell to 6-8 GiB/s whenever the two CPUs sat on
// different last-level caches. Large copies therefore use non-temporal
// stores, which go to memory without taking the lines into the writer's
// cache (and without first fetching them from the reader's): the reader
// then streams them from memory, measured at 21-22 GiB/s in those phases,
// and on a par with an ordinary copy for items of 256-768 KiB.
#ifndef IPC_HANDOVER_COPY_H_
#define IPC_HANDOVER_COPY_H_

#include <cstddef>
#include <cstring>

namespace mp::internal {

// HandOverCopy copies `n` bytes from `src` to `dst` (not overlapping), with
// non-temporal stores from kHandOverStreamingFrom() bytes on, where the CPU
// has them. Every store is visible to other CPUs when it returns (ordered
// before the caller's next release store).
void HandOverCopyLarge(char* dst, const char* src, size_t n);
inline void HandOverCopy(char* dst, const char* src, size_t n) {
  // Small copies (a queue's headers and most of its items) stay inline.
  if (n < 4096) {
    std::memcpy(dst, src, n);
  } else {
    HandOverCopyLarge(dst, src, n);
  }
}

// The size from which HandOverCopy streams: half the L2 cache (512 KiB if the
// system does not say), and never below 4 KiB.
size_t HandOverStreamingFrom();

}  // namespace mp::internal

#endif  // IPC_HANDOVER_COPY_H_
