// 001 6.4 §2, "更系统的做法": the writer runs to its end, then the reader
// empties the queue.
#include <string>

#include "apps/common/app.h"
#include "ipc/queue.h"
#include "process/process.h"

// 写数据进程执行的代码:
// In a namespace: write and read would clash with POSIX write(2)/read(2).
namespace doc {

void write(mp::Queue<std::string> q) {
  for (const char* value : {"A", "B", "C"}) {
    apps::Print(absl::StrCat("Put ", value, " to queue..."));
    q.put(value);
    apps::Sleep(apps::Random());
  }
}

// 读数据进程执行的代码:
void read(mp::Queue<std::string> q) {
  while (true) {
    if (!q.empty()) {
      std::string value = q.get(true);
      apps::Print("Get " + value + " from queue.");
      apps::Sleep(apps::Random());
    } else {
      break;
    }
  }
}

}  // namespace doc

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.4 §2: write, then read");
  // 父进程创建Queue，并传给各个子进程：
  mp::Queue<std::string> q;
  mp::Process pw(doc::write, q);
  mp::Process pr(doc::read, q);
  // 启动子进程pw，写入:
  pw.start();
  // 等待pw结束:
  pw.join();
  // 启动子进程pr，读取:
  pr.start();
  pr.join();
  apps::Print("");
  apps::Print("所有数据都写入并且读完");
}
