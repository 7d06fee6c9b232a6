// Deadlines: the end of a bounded wait, and the one poll(2) loop that waits
// for descriptors until one.
//
// Internal to the library (every package's waits use it). Deadlines are
// absolute CLOCK_MONOTONIC time points, so a wait interrupted by a signal
// resumes with the time that remains.
#ifndef BASE_DEADLINE_H_
#define BASE_DEADLINE_H_

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <optional>

namespace mp::internal {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++.

// A wait's end: nullopt waits forever.
using Deadline = std::optional<Clock::time_point>;

// DeadlineAfter returns now + timeout, saturating instead of overflowing for
// huge timeouts (which then mean "forever"). A negative timeout is "now".
template <class Rep, class Period>
Deadline DeadlineAfter(std::chrono::duration<Rep, Period> timeout) {
  using std::chrono::nanoseconds;
  constexpr auto kForever = std::chrono::hours(24 * 365 * 100);
  if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(kForever) &&
      std::chrono::duration<Rep, Period>::max() > kForever) {
    return std::nullopt;
  }
  if (timeout <= timeout.zero()) return Clock::now();
  return Clock::now() + std::chrono::duration_cast<nanoseconds>(timeout);
}

// Expired is true once a (finite) deadline has passed.
inline bool Expired(const Deadline& deadline) {
  return deadline.has_value() && Clock::now() >= *deadline;
}

// PollUntil is poll(2) until the deadline: it retries on EINTR and on a
// time-out that came early (poll rounds to milliseconds), and returns the
// number of ready descriptors, 0 once the deadline has passed. Throws
// mp::Error on any other failure, naming `what`.
int PollUntil(pollfd* fds, size_t count, const Deadline& deadline, const char* what = "poll");

// WaitReadable is true once `fd` is readable (or at its end, or in error),
// false if the deadline passes first.
bool WaitReadable(int fd, const Deadline& deadline);

}  // namespace mp::internal

#endif  // BASE_DEADLINE_H_
