#include "base/logging.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "base/mutex.h"

namespace mp {
namespace {

std::atomic<std::string (*)()> g_process_name{nullptr};

void WriteToStderr(int level, std::string_view message) {
  auto source = g_process_name.load();
  std::string line = "[" + level_name(level) + "/" + (source ? source() : std::string("MainProcess")) +
                     "] ";
  line.append(message);
  line.push_back('\n');
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

struct Handlers {
  internal::Mutex mu;
  std::shared_ptr<const Logger::Handler> handler ABSL_GUARDED_BY(mu) =
      std::make_shared<const Logger::Handler>(&WriteToStderr);
};

Handlers& TheHandlers();
void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { TheHandlers().mu.lock(); }
void UnlockAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { TheHandlers().mu.unlock(); }

Handlers& TheHandlers() {
  static auto* handlers = [] {
    auto* made = new Handlers;  // never destroyed: threads log at exit
    // A child forked while another thread logs must find the lock free.
    pthread_atfork(&LockForFork, &UnlockAfterFork, &UnlockAfterFork);
    return made;
  }();
  return *handlers;
}

}  // namespace

void Logger::set_handler(Handler handler) {
  Handlers& handlers = TheHandlers();
  auto made = std::make_shared<const Handler>(handler ? std::move(handler) : Handler(&WriteToStderr));
  internal::MutexLock lock(handlers.mu);
  handlers.handler = std::move(made);
}

void Logger::log(int level, std::string_view message) {
  if (!enabled_for(level)) return;
  // The handler runs without the lock: it may log, set a handler, or fork.
  std::shared_ptr<const Handler> handler;
  {
    Handlers& handlers = TheHandlers();
    internal::MutexLock lock(handlers.mu);
    handler = handlers.handler;
  }
  try {
    (*handler)(level, message);
  } catch (...) {
    // A handler that throws loses its record, never the caller's work.
  }
}

Logger& get_logger() {
  static auto* logger = new Logger;  // never destroyed: threads log at exit
  return *logger;
}

Logger& log_to_stderr(int level) {
  Logger& logger = get_logger();
  logger.set_handler(nullptr);
  logger.set_level(level);
  return logger;
}

std::string level_name(int level) {
  switch (level) {
    case SUBDEBUG: return "SUBDEBUG";
    case DEBUG: return "DEBUG";
    case INFO: return "INFO";
    case SUBWARNING: return "SUBWARNING";
    case WARNING: return "WARNING";
    case ERROR: return "ERROR";
    case CRITICAL: return "CRITICAL";
    default: return "Level " + std::to_string(level);
  }
}

namespace internal {
void SetProcessNameSource(std::string (*source)()) { g_process_name.store(source); }
}  // namespace internal

}  // namespace mp
