// 004 方式一: four processes from a function.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void piao(std::string name) {
  apps::Print(name + " piaoing");
  apps::Sleep(apps::RandRange(1, 5));
  apps::Print(name + " piao end");
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "004 方式一: Process with a target");
  // 实例化得到四个对象
  mp::Process p1(piao, "egon");
  mp::Process p2(piao, "alex");
  mp::Process p3(piao, "wupeqi");
  mp::Process p4(piao, "yuanhao");
  // 调用对象下的方法，开启四个进程
  p1.start();
  p2.start();
  p3.start();
  p4.start();
  apps::Print("主");
}
