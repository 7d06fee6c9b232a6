// 000 §3, first example: without daemon, the child outlives the parent's
// last line ("【EMD】" comes first) and still runs to its end.
#include "apps/common/app.h"
#include "process/process.h"

void worker(double interval) {
  apps::Print("工作开始时间：" + apps::CTime());
  apps::Sleep(interval);
  apps::Print("工作结果时间：" + apps::CTime());
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §3: a non-daemonic child");
  mp::Process p(worker, 3);
  p.start();
  apps::Print("【EMD】");
}
