// 001 6.2 §1, "多进程": test1 and test2 in two processes.
// The document's loops are endless; --iterations bounds them.
#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "process/process.h"

DEFINE_int32(iterations, 5, "rounds of each loop (the document's loops never end)");

void test1() {
  for (int i = 0; i < FLAGS_iterations; ++i) {
    apps::Print("1--------");
    apps::Sleep(1);
  }
}

void test2() {
  for (int i = 0; i < FLAGS_iterations; ++i) {
    apps::Print("2--------");
    apps::Sleep(1);
  }
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.2 §1: test1 and test2 in two processes");
  mp::Process p1(test1);
  mp::Process p2(test2);
  p1.start();
  p2.start();
}
