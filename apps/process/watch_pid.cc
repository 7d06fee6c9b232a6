// 003: Mike looks at his watch in another process, with the pids shown.
#include <unistd.h>

#include <string>

#include "apps/common/app.h"
#include "process/process.h"

void watch(std::string owner) {
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", " is looking at his/her watch"));
  apps::Sleep(3);
  const std::string now = apps::CTime();
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", "'s Watch says it is ", now));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "003: Mike's watch, with pids");
  apps::Print(absl::StrCat("I(", getpid(), ") am asking time."));
  mp::Process p(watch, "Mike");
  p.start();
  p.join();
}
