#include "base/deadline.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "base/errors.h"

namespace mp::internal {

int PollUntil(pollfd* fds, size_t count, const Deadline& deadline, const char* what) {
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT_MAX));
    }
    const int n = ::poll(fds, count, timeout_ms);
    if (n > 0) return n;
    if (n < 0 && errno != EINTR) throw_errno(what);
    if (n == 0 && Expired(deadline)) return 0;
  }
}

bool WaitReadable(int fd, const Deadline& deadline) {
  pollfd p{fd, POLLIN, 0};
  return PollUntil(&p, 1, deadline) > 0;
}

}  // namespace mp::internal
