#include "ipc/handover_copy.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mp::internal {

size_t HandOverStreamingFrom() {
  static const size_t from = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return std::max<size_t>(l2 > 0 ? static_cast<size_t>(l2) / 2 : size_t{512} << 10, 4096);
  }();
  return from;
}

void HandOverCopyLarge(char* dst, const char* src, size_t n) {
#if defined(__SSE2__)
  if (n >= HandOverStreamingFrom()) {
    // Written by hand: memcpy streams only beyond glibc's threshold (a
    // fraction of the reported L3 cache, here 127 MiB). Whole 64-byte lines
    // from an aligned destination, so that the CPU's write-combining buffers
    // go out as full lines.
    const size_t head = (64 - reinterpret_cast<uintptr_t>(dst) % 64) % 64;
    std::memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16));
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 32));
      const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 48), d);
    }
    std::memcpy(dst, src, n);
    // Non-temporal stores are not ordered with later stores: the fence
    // keeps them ahead of the caller's publishing of the bytes.
    _mm_sfence();
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

}  // namespace mp::internal
