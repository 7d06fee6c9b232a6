// The library's logger. Python: multiprocessing.get_logger(),
// multiprocessing.log_to_stderr(level).
//
//   mp::log_to_stderr(mp::INFO);     // or mp::get_logger().set_level(mp::DEBUG)
//   // [INFO/MainProcess] pool: worker ForkPoolWorker-2 (pid 4242) started
//   // [INFO/ForkPoolWorker-2] child process calling self.run()
//
// What the library reports, as Python's multiprocessing.util does: workers
// started, exited, died and replaced, tasks lost with their worker or
// killed by a time limit (INFO); children starting and exiting; manager
// servers starting and clients gone (DEBUG/INFO). Nothing is written until a
// level is set: the default level is NOTSET, which here means "off"
// (Python's logger then falls back to WARNING and above; the library's own
// warnings are printed on stderr regardless, as before).
//
// A small logger of its own: Debian 12's Abseil (20220623) predates
// absl/log. Each record is one write(2) of one line, so the lines of
// processes sharing stderr do not interleave.
//
// Thread safety: every function from any thread. Fork safety: a child may
// log at once (the handler's lock is taken around every fork).
#ifndef BASE_LOGGING_H_
#define BASE_LOGGING_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

namespace mp {

// Python's levels (logging and multiprocessing.util).
inline constexpr int NOTSET = 0;
inline constexpr int SUBDEBUG = 5;
inline constexpr int DEBUG = 10;
inline constexpr int INFO = 20;
inline constexpr int SUBWARNING = 25;
inline constexpr int WARNING = 30;
inline constexpr int ERROR = 40;
inline constexpr int CRITICAL = 50;

class Logger {
 public:
  // A handler receives each record that passes the level.
  using Handler = std::function<void(int level, std::string_view message)>;

  // set_level: records below `level` are dropped; NOTSET drops all.
  void set_level(int level) { level_.store(level, std::memory_order_relaxed); }
  int level() const { return level_.load(std::memory_order_relaxed); }
  bool enabled_for(int level) const {
    const int threshold = this->level();
    return threshold != NOTSET && level >= threshold;
  }
  // set_handler replaces where records go (default: stderr, formatted
  // "[LEVEL/ProcessName] message"). A handler runs on the thread that logs,
  // which may be one of a pool's or manager's own threads, at times with
  // that object's internal lock held: it must not call back into the object
  // that logs (write the record somewhere and return).
  void set_handler(Handler handler);

  void log(int level, std::string_view message);
  void subdebug(std::string_view message) { log(SUBDEBUG, message); }
  void debug(std::string_view message) { log(DEBUG, message); }
  void info(std::string_view message) { log(INFO, message); }
  void warning(std::string_view message) { log(WARNING, message); }
  void error(std::string_view message) { log(ERROR, message); }

 private:
  std::atomic<int> level_{NOTSET};
};

// get_logger: the library's logger.
Logger& get_logger();
// log_to_stderr: records at `level` and above go to stderr (the default
// handler, put back); returns the logger. Python: log_to_stderr(level).
Logger& log_to_stderr(int level = INFO);

// level_name: "DEBUG", "INFO", ... ("Level N" for others).
std::string level_name(int level);

namespace internal {
// SetProcessNameSource: where records find the current process's name
// (//process sets it: current_process().name()).
void SetProcessNameSource(std::string (*source)());
// Log: a record, when the logger takes its level (the message is built
// only then).
template <class MakeMessage>
void Log(int level, MakeMessage&& make_message) {
  Logger& logger = get_logger();
  if (logger.enabled_for(level)) logger.log(level, make_message());
}
}  // namespace internal

}  // namespace mp

#endif  // BASE_LOGGING_H_
