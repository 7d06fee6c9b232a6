// 000 §2 and 002 例1.3: a Process subclass whose run() prints the time.
// --document=000 (default): n = 5, interval 3, "当前时间: ..."
// --document=002: n = 3, interval 2, "the time is ..."
#include <string>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "process/process.h"

DEFINE_string(document, "000", "which document's version: 000 or 002");

class ClockProcess : public mp::Process {
 public:
  explicit ClockProcess(double interval) : interval(interval) {}

  void run() override {
    int n = FLAGS_document == "002" ? 3 : 5;
    while (n > 0) {
      if (FLAGS_document == "002") {
        apps::Print("the time is " + apps::CTime());
      } else {
        apps::Print("当前时间: " + apps::CTime());
      }
      apps::Sleep(interval);
      n -= 1;
    }
  }

 private:
  double interval;
};

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §2 / 002 例1.3: a Process subclass");
  ClockProcess p(FLAGS_document == "002" ? 2 : 3);
  p.start();
}
