// 002 §3: a Semaphore(2) lets two of three processes in at once.
#include <deque>

#include "apps/common/app.h"
#include "process/process.h"
#include "sync/synchronize.h"

void worker(mp::Semaphore s, int i) {
  s.acquire();
  apps::Print(mp::current_process().name() + "acquire");
  apps::Sleep(i);
  apps::Print(mp::current_process().name() + "release\n");
  s.release();
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 §3: Semaphore");
  mp::Semaphore s(2);
  std::deque<mp::Process> processes;
  for (int i = 0; i < 3; ++i) {
    mp::Process& p = processes.emplace_back(worker, s, i * 2);
    p.start();
  }
}
