// 000 §5: Pool(4) runs six long_time_task calls; the fifth waits for a free
// worker.
#include <unistd.h>

#include "apps/common/app.h"
#include "pool/pool.h"

void long_time_task(int name) {
  apps::Print(absl::StrFormat("进程的名称：%d ；进程的PID: %d ", name, getpid()));
  double start = apps::Time();
  apps::Sleep(apps::Random() * 3);
  double end = apps::Time();
  apps::Print(absl::StrCat("进程 ", name, " 运行了 ", apps::PyFloat(end - start), " 秒"));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §5: Pool");
  apps::Print(absl::StrFormat("主进程的 PID：%d", getpid()));
  mp::Pool p(4);
  for (int i = 0; i < 6; ++i) p.apply_async(long_time_task, i);
  p.close();
  // 等待所有子进程结束后在关闭主进程
  p.join();
  apps::Print("【End】");
}
