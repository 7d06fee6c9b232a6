// 003: ten processes print under one lock.
#include <deque>
#include <string>

#include "apps/common/app.h"
#include "process/process.h"
#include "sync/synchronize.h"

void f(mp::Lock l, int i) {
  l.acquire();
  try {
    apps::Print("hello world " + std::to_string(i));
  } catch (...) {
    l.release();
    throw;
  }
  l.release();
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "003: ten processes, one lock");
  mp::Lock lock;
  std::deque<mp::Process> processes;  // Python drops its references; C++ keeps the handles.
  for (int num = 0; num < 10; ++num) processes.emplace_back(f, lock, num).start();
}
