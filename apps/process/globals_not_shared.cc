// 001 6.2 §5: processes do not share globals; each child works on its own
// copy of nums.
#include <unistd.h>

#include <vector>

#include "apps/common/app.h"
#include "process/process.h"

std::vector<int> nums = {11, 22};

void work1() {
  // 子进程要执行的代码
  apps::Print(absl::StrFormat("in process1 pid=%d ,nums=%s", getpid(), apps::PyList(nums)));
  for (int i = 0; i < 3; ++i) {
    nums.push_back(i);
    apps::Sleep(1);
    apps::Print(absl::StrFormat("in process1 pid=%d ,nums=%s", getpid(), apps::PyList(nums)));
  }
}

void work2() {
  // 子进程要执行的代码
  apps::Print(absl::StrFormat("in process2 pid=%d ,nums=%s", getpid(), apps::PyList(nums)));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.2 §5: globals are not shared");
  mp::Process p1(work1);
  p1.start();
  p1.join();
  mp::Process p2(work2);
  p2.start();
}
