// 001 6.2 §1: two while loops at once, the parent's and the child's.
// The document's loops are endless; --iterations bounds them.
#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "process/process.h"

DEFINE_int32(iterations, 5, "rounds of each loop (the document's loops never end)");

void run_proc() {
  // 子进程要执行的代码
  for (int i = 0; i < FLAGS_iterations; ++i) {
    apps::Print("----2----");
    apps::Sleep(1);
  }
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.2 §1: two loops in two processes");
  mp::Process p(run_proc);  // 创建一个进程
  p.start();                // 开启进程
  for (int i = 0; i < FLAGS_iterations; ++i) {
    apps::Print("----1----");
    apps::Sleep(1);
  }
}
