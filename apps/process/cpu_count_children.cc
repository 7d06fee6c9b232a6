// 002 例1.2: two processes, cpu_count and active_children.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void worker_1(double interval) {
  apps::Print("worker_1");
  apps::Sleep(interval);
  apps::Print("end worker_1");
}

void worker_2(double interval) {
  apps::Print("worker_2");
  apps::Sleep(interval);
  apps::Print("end worker_2");
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 例1.2: cpu_count and active_children");
  mp::Process p1(worker_1, 2);
  mp::Process p2(worker_2, 3);
  p1.start();
  p2.start();
  apps::Print("The number of CPU is:" + std::to_string(mp::cpu_count()));
  for (const auto& p : mp::active_children()) {
    apps::Print("child   p.name:" + p.name() + "\tp.id" + std::to_string(p.pid()));
  }
  apps::Print("END!!!!!!!!!!!!!!!!!");
}
