// 002 §4: one process waits for the event, the other gives up after 2 s;
// the parent sets it after 3 s.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"
#include "sync/synchronize.h"

std::string str(bool b) { return b ? "True" : "False"; }

void wait_for_event(mp::Event e) {
  apps::Print("wait_for_event: starting");
  e.wait();
  apps::Print("wairt_for_event: e.is_set()->" + str(e.is_set()));
}

void wait_for_event_timeout(mp::Event e, double t) {
  apps::Print("wait_for_event_timeout:starting");
  e.wait(std::chrono::duration<double>(apps::Scaled(t)));
  apps::Print("wait_for_event_timeout:e.is_set->" + str(e.is_set()));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 §4: Event");
  mp::Event e;
  mp::Process w1(mp::ProcessOptions{.name = "block"}, wait_for_event, e);
  mp::Process w2(mp::ProcessOptions{.name = "non-block"}, wait_for_event_timeout, e, 2);
  w1.start();
  w2.start();
  apps::Sleep(3);
  e.set();
  apps::Print("main: event is set");
}
