// 002 例1.1: one process; its pid, name and is_alive.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void worker(double interval) {
  int n = 3;
  while (n > 0) {
    apps::Print("The time is " + apps::CTime());
    apps::Sleep(interval);
    n -= 1;
  }
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 例1.1: pid, name, is_alive");
  mp::Process p(worker, 2);
  p.start();
  apps::Print("p.pid: " + std::to_string(p.pid()));
  apps::Print("p.name: " + p.name());
  apps::Print(std::string("p.is_alive: ") + (p.is_alive() ? "True" : "False"));
}
