// 002 §6: proc1 sends 0..4 over a Pipe, proc2 receives. The document's loops
// never end; --iterations bounds them (rounds of five sends).
#include <string>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "ipc/connection.h"
#include "process/process.h"

DEFINE_int32(iterations, 1, "rounds of five messages (the document's loops never end)");

void proc1(mp::Connection pipe) {
  for (int round = 0; round < FLAGS_iterations; ++round) {
    for (int i = 0; i < 5; ++i) {
      apps::Print("send: " + std::to_string(i));
      pipe.send(i);
      apps::Sleep(1);
    }
  }
}

void proc2(mp::Connection pipe) {
  for (int received = 0; received < 5 * FLAGS_iterations; ++received) {
    apps::Print("proc2 rev: " + std::to_string(pipe.recv<int>()));
    apps::Sleep(1);
  }
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 §6: Pipe");
  auto pipe = mp::Pipe();
  mp::Process p1(proc1, pipe.first);
  mp::Process p2(proc2, pipe.second);
  p1.start();
  p2.start();
  p1.join();
  p2.join();
}
