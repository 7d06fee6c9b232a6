// 001 6.2 §4: passing arguments (and Python's kwargs, here a map) to the
// target; the parent terminates the child after 1 s.
#include <unistd.h>

#include <map>
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void run_proc(std::string name, int age, std::map<std::string, int> kwargs) {
  for (int i = 0; i < 10; ++i) {
    apps::Print(absl::StrFormat("子进程运行中，name= %s,age=%d ,pid=%d...", name, age, getpid()));
    apps::Print(apps::PyDict(kwargs));
    apps::Sleep(0.2);
  }
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.2 §4: arguments, then terminate after 1 s");
  mp::Process p(run_proc, "test", 18, std::map<std::string, int>{{"m", 20}});
  p.start();
  apps::Sleep(1);  // 1秒中之后，立即结束子进程
  p.terminate();
  p.join();
}
