// 002 例7.1: Pool(processes=3) with four tasks, results not collected.
// (The document's "<multiprocessing.pool.ApplyResult object at ...>" lines
// are an interactive session's echo, not output of the program.)
#include <string>

#include "apps/common/app.h"
#include "pool/pool.h"

void func(std::string msg) {
  apps::Print("msg: " + msg);
  apps::Sleep(3);
  apps::Print("end");
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 例7.1: apply_async");
  mp::Pool pool(mp::PoolOptions{.processes = 3});
  for (int i = 0; i < 4; ++i) {
    std::string msg = "hello " + std::to_string(i);
    pool.apply_async(func, msg);
  }
  apps::Print("Mark~ Mark~ Mark~~~~~~~~~~~~~~~~~~~~~~");
  pool.close();
  pool.join();  // 调用join之前，先调用close函数，否则会出错。
  apps::Print("Sub-process(es) done.");
}
