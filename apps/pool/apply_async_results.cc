// 002 例7.3: Pool(processes=4), collecting each task's result with get().
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "pool/pool.h"

std::string func(std::string msg) {
  apps::Print("msg: " + msg);
  apps::Sleep(3);
  apps::Print("end");
  return "done" + msg;
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 例7.3: apply_async and get");
  mp::Pool pool(mp::PoolOptions{.processes = 4});
  std::vector<mp::AsyncResult<std::string>> result;
  for (int i = 0; i < 3; ++i) {
    std::string msg = "hello " + std::to_string(i);
    result.push_back(pool.apply_async(func, msg));
  }
  pool.close();
  pool.join();
  for (auto& res : result) apps::Print("::: " + res.get());
  apps::Print("Sub-process(es) done.");
}
