// 000 §1: three processes running worker(interval, name), cpu_count and
// active_children.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void worker(double interval, std::string name) {
  apps::Print(name + "【start】");
  apps::Sleep(interval);
  apps::Print(name + "【end】");
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §1: multiple worker processes");
  mp::Process p1(worker, 2, "两点水1");
  mp::Process p2(worker, 3, "两点水2");
  mp::Process p3(worker, 4, "两点水3");

  p1.start();
  p2.start();
  p3.start();

  apps::Print("The number of CPU is:" + std::to_string(mp::cpu_count()));
  for (const auto& p : mp::active_children()) {
    apps::Print("child   p.name:" + p.name() + "\tp.id" + std::to_string(p.pid()));
  }
  apps::Print("END!!!!!!!!!!!!!!!!!");
}
