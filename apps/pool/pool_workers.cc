// 001 6.5: Pool(3) runs ten tasks; each prints its pid and how long it took.
#include <unistd.h>

#include "apps/common/app.h"
#include "pool/pool.h"

void worker(int msg) {
  double t_start = apps::Time();
  apps::Print(absl::StrFormat("%d开始执行,进程号为%d", msg, getpid()));
  // random.random()随机生成0~1之间的浮点数
  apps::Sleep(apps::Random() * 2);
  double t_stop = apps::Time();
  // Python's print(a, b) puts a space between a and b.
  apps::Print(absl::StrFormat("%d 执行完毕，耗时%0.2f", msg, t_stop - t_start));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.5: Pool(3), ten tasks");
  mp::Pool po(3);  // 定义一个进程池，最大进程数3
  for (int i = 0; i < 10; ++i) {
    // 每次循环将会用空闲出来的子进程去调用目标
    po.apply_async(worker, i);
  }
  apps::Print("----start----");
  po.close();  // 关闭进程池，关闭后po不再接收新的请求
  po.join();   // 等待po中所有子进程执行完成，必须放在close语句之后
  apps::Print("-----end-----");
}
