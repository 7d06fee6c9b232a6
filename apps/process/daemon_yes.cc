// 000 §3, second example: a daemonic child is terminated when the parent
// ends, so only "【EMD】" is printed.
#include "apps/common/app.h"
#include "process/process.h"

void worker(double interval) {
  apps::Print("工作开始时间：" + apps::CTime());
  apps::Sleep(interval);
  apps::Print("工作结果时间：" + apps::CTime());
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §3: a daemonic child");
  mp::Process p(worker, 3);
  p.set_daemon(true);
  p.start();
  apps::Print("【EMD】");
}
