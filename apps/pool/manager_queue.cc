// 001 6.5 "进程池中的Queue": pool workers talk through Manager().Queue(),
// since an mp::Queue cannot reach workers that already exist.
#include <unistd.h>

#include <string>

#include "apps/common/app.h"
#include "manager/manager.h"
#include "pool/pool.h"

void reader(mp::proxy::Queue<std::string> q) {
  // os.getppid() in Python's worker is the pool's process; ours are started by
  // the pool's launcher, so ask for the logical parent.
  apps::Print(absl::StrFormat("reader启动(%d),父进程为(%d)", getpid(), mp::parent_process()->pid()));
  for (long i = 0, n = q.qsize(); i < n; ++i) {
    apps::Print("reader从Queue获取到消息：" + q.get(true));
  }
}

void writer(mp::proxy::Queue<std::string> q) {
  apps::Print(absl::StrFormat("writer启动(%d),父进程为(%d)", getpid(), mp::parent_process()->pid()));
  for (char i : std::string("itcast")) q.put(std::string(1, i));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.5: Manager Queue between pool workers");
  apps::Print(absl::StrFormat("(%d) start", getpid()));
  mp::Manager manager;
  auto q = manager.Queue<std::string>();  // 使用Manager中的Queue
  mp::Pool po;
  po.apply_async(writer, q);
  apps::Sleep(1);  // 先让上面的任务向Queue存入数据，然后再让下面的任务开始从中取数据
  po.apply_async(reader, q);
  po.close();
  po.join();
  apps::Print(absl::StrFormat("(%d) End", getpid()));
}
