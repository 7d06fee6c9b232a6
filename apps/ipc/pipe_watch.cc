// 003: Mike sends the time back over a Pipe, so the parent sees it.
#include <unistd.h>

#include <string>

#include "apps/common/app.h"
#include "ipc/connection.h"
#include "process/process.h"

void watch(std::string owner, mp::Connection conn) {
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", " is looking at his/her watch"));
  apps::Sleep(3);
  const std::string now = apps::CTime();
  conn.send(now);
  apps::Print(absl::StrCat(owner, "(", getpid(), ")", "'s Watch says it is ", now));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "003: Pipe between Mike and me");
  apps::Print(absl::StrCat("I(", getpid(), ") am asking time."));
  auto [conn_for_me, conn_for_mike] = mp::Pipe();
  mp::Process p(watch, "Mike", conn_for_mike);
  p.start();
  p.join();
  apps::Print("I see Mike's watch says: " + conn_for_me.recv<std::string>());
}
