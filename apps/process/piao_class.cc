// 004 方式二: four processes from a Process subclass.
#include <string>

#include "apps/common/app.h"
#include "process/process.h"

class Piao : public mp::Process {
 public:
  explicit Piao(std::string name) { set_name(std::move(name)); }

  void run() override {
    apps::Print(name() + " piaoing");
    apps::Sleep(apps::RandRange(1, 5));
    apps::Print(name() + " piao end");
  }
};

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "004 方式二: a Process subclass");
  // 实例化得到四个对象
  Piao p1("egon");
  Piao p2("alex");
  Piao p3("wupeiqi");
  Piao p4("yuanhao");
  // 调用对象下的方法，开启四个进程
  p1.start();  // start会自动调用run
  p2.start();
  p3.start();
  p4.start();
  apps::Print("主");
}
