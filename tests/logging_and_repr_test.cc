// The library's logger (mp::get_logger, mp::log_to_stderr) and the
// lifecycle events it reports, and operator<< for Process, Pool,
// AsyncResult, Future and proxies (Python's reprs).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "base/logging.h"
#include "gtest/gtest.h"
#include "manager/manager.h"
#include "pool/pool.h"
#include "process/process.h"
#include "sync/synchronize.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

template <class T>
std::string Repr(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// Collects the records of this process (restores the default at the end).
class Records {
 public:
  explicit Records(int level) {
    get_logger().set_handler([this](int lvl, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.push_back(level_name(lvl) + ": " + std::string(message));
    });
    get_logger().set_level(level);
  }
  ~Records() {
    get_logger().set_level(NOTSET);
    get_logger().set_handler(nullptr);
  }
  bool Has(const std::string& pattern) {
    std::lock_guard lock(mu_);
    const std::regex re(pattern);
    for (const auto& line : lines_) {
      if (std::regex_search(line, re)) return true;
    }
    return false;
  }
  std::string All() {
    std::lock_guard lock(mu_);
    std::string all;
    for (const auto& line : lines_) all += line + "\n";
    return all;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST(Logger, LevelsFilterAndNothingIsLoggedByDefault) {
  Logger& logger = get_logger();
  EXPECT_EQ(logger.level(), NOTSET);
  EXPECT_FALSE(logger.enabled_for(CRITICAL));  // off until a level is set
  Records records(INFO);
  logger.debug("not this");
  logger.info("this one");
  logger.warning("and this");
  EXPECT_FALSE(records.Has("not this"));
  EXPECT_TRUE(records.Has("^INFO: this one$"));
  EXPECT_TRUE(records.Has("^WARNING: and this$"));
  EXPECT_EQ(level_name(SUBDEBUG), "SUBDEBUG");
  EXPECT_EQ(level_name(17), "Level 17");
}

TEST(Logger, LogToStderrWritesPythonsFormatOneLinePerRecord) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  log_to_stderr(DEBUG).info("hello from the test");
  get_logger().debug("second");
  get_logger().set_level(NOTSET);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  const std::string text = testing::ReadAllAndClose(fds[0]);
  EXPECT_EQ(text, "[INFO/MainProcess] hello from the test\n[DEBUG/MainProcess] second\n");
}

int Quiet() { return 0; }
int Crash(int x) {
  if (x == 5) ::kill(::getpid(), SIGKILL);
  return x;
}

TEST(Logger, ChildrenAndPoolWorkersReportTheirLifecycle) {
  // A handler writing to a pipe: forked children inherit it, so their
  // records arrive here too.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  get_logger().set_handler([fd = fds[1]](int level, std::string_view message) {
    const std::string line = level_name(level) + "/" + current_process().name() + ": " +
                             std::string(message) + "\n";
    [[maybe_unused]] ssize_t n = write(fd, line.data(), line.size());
  });
  get_logger().set_level(DEBUG);
  {
    Process child(Quiet);
    child.set_name("Quiet-1");
    child.start();
    child.join();
    Pool pool(1);
    EXPECT_THROW(pool.apply(Crash, 5), WorkerLostError);
    EXPECT_EQ(pool.apply(Crash, 1), 1);  // the replacement runs it
    pool.close();
    pool.join();
  }
  get_logger().set_level(NOTSET);
  get_logger().set_handler(nullptr);
  close(fds[1]);
  const std::string text = testing::ReadAllAndClose(fds[0]);
  auto has = [&](const std::string& pattern) { return std::regex_search(text, std::regex(pattern)); };
  EXPECT_TRUE(has("INFO/Quiet-1: child process calling self.run\\(\\)")) << text;
  EXPECT_TRUE(has("INFO/Quiet-1: process exiting with exitcode 0")) << text;
  EXPECT_TRUE(has("DEBUG/MainProcess: pool: worker ForkPoolWorker-\\d+ \\(pid \\d+\\) started")) << text;
  EXPECT_TRUE(has("INFO/MainProcess: pool: task \\d+ lost: worker ForkPoolWorker-\\d+")) << text;
  EXPECT_TRUE(has("INFO/MainProcess: pool: worker ForkPoolWorker-\\d+ \\(pid \\d+\\) exited with code -9"))
      << text;
  EXPECT_TRUE(has("DEBUG/MainProcess: pool: replacing worker ForkPoolWorker-\\d+")) << text;
  EXPECT_TRUE(has("DEBUG/MainProcess: closing pool")) << text;
  EXPECT_TRUE(has("DEBUG/MainProcess: joining pool workers")) << text;
}

TEST(Logger, ManagerReportsItsAddressAndClientsGone) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  get_logger().set_handler([fd = fds[1]](int level, std::string_view message) {
    const std::string line = level_name(level) + ": " + std::string(message) + "\n";
    [[maybe_unused]] ssize_t n = write(fd, line.data(), line.size());
  });
  get_logger().set_level(DEBUG);
  {
    Manager manager;
    auto d = manager.dict<std::string, int>();
    d.set("a", 1);
    Process client([d]() mutable { d.set("b", 2); });
    client.start();
    client.join();
    EXPECT_EQ(d.get("b"), 2);
    manager.shutdown();
  }
  get_logger().set_level(NOTSET);
  get_logger().set_handler(nullptr);
  close(fds[1]);
  const std::string text = testing::ReadAllAndClose(fds[0]);
  EXPECT_NE(text.find("INFO: manager serving at '"), std::string::npos) << text;
  EXPECT_NE(text.find("DEBUG: manager: client "), std::string::npos) << text;
}

// Reprs.

int Sleeps() {
  ::pause();
  return 0;
}

TEST(Repr, ProcessAsPython) {
  const std::string parent = std::to_string(::getpid());
  Process p(Quiet);
  p.set_name("Worker-7");
  EXPECT_EQ(Repr(p), "<Process name='Worker-7' parent=" + parent + " initial>");
  p.start();
  p.join();
  EXPECT_EQ(Repr(p), "<Process name='Worker-7' pid=" + std::to_string(p.pid()) + " parent=" + parent +
                         " stopped exitcode=0>");
  Process d(Sleeps);
  d.set_daemon(true);
  d.start();
  EXPECT_EQ(Repr(d), "<Process name='" + d.name() + "' pid=" + std::to_string(d.pid()) + " parent=" +
                         parent + " started daemon>");
  d.terminate();
  d.join();
  EXPECT_NE(Repr(d).find(" stopped exitcode=-SIGTERM daemon>"), std::string::npos) << Repr(d);
  p.close();
  EXPECT_EQ(Repr(p), "<Process name='Worker-7' closed>");
}

TEST(Repr, PoolAsyncResultFutureAndThreadPool) {
  Pool pool(2);
  EXPECT_EQ(Repr(pool), "<mp::Pool state=RUN pool_size=2>");
  auto r = pool.apply_async(Crash, 1);
  r.wait();
  EXPECT_TRUE(std::regex_match(Repr(r), std::regex("<mp::AsyncResult object at 0x[0-9a-f]+ ready>")))
      << Repr(r);
  auto f = pool.submit(Crash, 2);
  f.result(10s);
  EXPECT_TRUE(std::regex_match(Repr(f), std::regex("<Future at 0x[0-9a-f]+ state=finished returned int>")))
      << Repr(f);
  pool.close();
  EXPECT_EQ(Repr(pool), "<mp::Pool state=CLOSE pool_size=2>");
  pool.terminate();
  EXPECT_EQ(Repr(pool), "<mp::Pool state=TERMINATE pool_size=2>");
  ThreadPool threads(3);
  EXPECT_EQ(Repr(threads), "<mp::ThreadPool state=RUN pool_size=3>");
}

TEST(Repr, ProxiesAsPython) {
  Manager manager;
  const std::regex at(" at 0x[0-9a-f]+>$");
  auto d = manager.dict<std::string, int>();
  EXPECT_EQ(Repr(d).rfind("<DictProxy object, typeid 'dict' at 0x", 0), 0u) << Repr(d);
  EXPECT_TRUE(std::regex_search(Repr(d), at));
  EXPECT_EQ(Repr(manager.list<int>()).rfind("<ListProxy object, typeid 'list' at 0x", 0), 0u);
  EXPECT_EQ(Repr(manager.Queue<int>()).rfind("<AutoProxy[Queue] object, typeid 'Queue' at 0x", 0), 0u);
  EXPECT_EQ(Repr(manager.Lock()).rfind("<AcquirerProxy object, typeid 'Lock' at 0x", 0), 0u);
  EXPECT_EQ(Repr(manager.Event()).rfind("<EventProxy object, typeid 'Event' at 0x", 0), 0u);
  EXPECT_EQ(Repr(manager.Value<int>(0)).rfind("<ValueProxy object, typeid 'Value' at 0x", 0), 0u);
}

}  // namespace
}  // namespace mp
