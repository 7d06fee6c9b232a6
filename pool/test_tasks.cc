#include "pool/test_tasks.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/errors.h"
#include "process/process.h"

namespace mp::test_tasks {

int Square(int x) { return x * x; }
int Add(int a, int b) { return a + b; }
std::string Greet(std::string name) { return "hello " + name; }
void Nothing() {}
int MyPid(int) { return getpid(); }
std::string WorkerName(int) { return current_process().name(); }

int Fail(int x) {
  if (x == 3) throw ValueError("three is bad");
  return x;
}

int CrashOn(int x) {
  if (x == 5) raise(SIGKILL);
  return x;
}

int SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

}  // namespace mp::test_tasks
