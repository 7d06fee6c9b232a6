// 001 6.2 §2: the parent's and the child's pids.
#include <unistd.h>

#include "apps/common/app.h"
#include "process/process.h"

void run_proc() {
  // 子进程要执行的代码
  apps::Print(absl::StrFormat("子进程运行中，pid=%d...", getpid()));
  apps::Print("子进程将要结束...");
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.2 §2: process ids");
  apps::Print(absl::StrFormat("父进程pid: %d", getpid()));
  mp::Process p(run_proc);
  p.start();
}
