// 000 §6: a writer and a reader process share a Queue; the reader loops
// forever, so the parent terminates it once the writer is done.
#include <unistd.h>

#include <string>

#include "apps/common/app.h"
#include "ipc/queue.h"
#include "process/process.h"

// In a namespace: write and read would clash with POSIX write(2)/read(2).
namespace doc {

void write(mp::Queue<std::string> q) {
  // 写数据进程
  apps::Print(absl::StrFormat("写进程的PID:%d", getpid()));
  for (const char* value : {"两点水", "三点水", "四点水"}) {
    apps::Print(absl::StrCat("写进 Queue 的值为：", value));
    q.put(value);
    apps::Sleep(apps::Random());
  }
}

void read(mp::Queue<std::string> q) {
  // 读取数据进程
  apps::Print(absl::StrFormat("读进程的PID:%d", getpid()));
  while (true) {
    std::string value = q.get(true);
    apps::Print("从 Queue 读取的值为：" + value);
  }
}

}  // namespace doc

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §6: Queue between a writer and a reader");
  // 父进程创建 Queue，并传给各个子进程
  mp::Queue<std::string> q;
  mp::Process pw(doc::write, q);
  mp::Process pr(doc::read, q);
  // 启动子进程 pw
  pw.start();
  // 启动子进程pr
  pr.start();
  // 等待pw结束:
  pw.join();
  // pr 进程里是死循环，无法等待其结束，只能强行终止
  // (Beyond the document: let the reader drain the queue first, since
  // terminate could otherwise cut it off before the last value.)
  while (!q.empty()) apps::Sleep(0.01);
  pr.terminate();
  pr.join();
}
