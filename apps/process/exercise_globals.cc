// 004 练习 2: the child sets n = 0 in its own memory; the parent's n stays 100.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

int n = 100;

void work() {
  n = 0;
  apps::Print("子进程内:  " + std::to_string(n));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "004 练习 2: memory is not shared");
  mp::Process p(work);
  p.start();
  apps::Print("主进程内:  " + std::to_string(n));
}
