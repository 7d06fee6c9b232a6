// 003: the child sets the global `now`, but the parent never sees it: the
// child changed its own copy. Python fails with NameError; so does this port
// (message on stderr, exit code 1).
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

std::optional<std::string> now;  // Python: global now (not yet defined)

void watch(std::string owner) {
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", " is looking at his/her watch"));
  apps::Sleep(3);
  now = apps::CTime();
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", "'s Watch says it is ", *now));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "003: a global the parent never sees");
  apps::Print(absl::StrCat("I(", getpid(), ") am asking time."));
  mp::Process p(watch, "Mike");
  p.start();
  p.join();
  if (!now) {
    std::fprintf(stderr, "NameError: name 'now' is not defined\n");
    return 1;
  }
  apps::Print("I see Mike's watch says: " + *now);
}
