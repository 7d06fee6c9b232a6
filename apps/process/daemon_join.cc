// 000 §4 and 002 例1.4: join waits for the daemonic child, so its lines come
// before the parent's last one.
// --document=000 (default): "工作开始时间：..." ... "【EMD】"
// --document=002: "work start:..." ... "end!"
#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "process/process.h"

DEFINE_string(document, "000", "which document's version: 000 or 002");

void worker(double interval) {
  const bool doc002 = FLAGS_document == "002";
  apps::Print((doc002 ? "work start:" : "工作开始时间：") + apps::CTime());
  apps::Sleep(interval);
  apps::Print((doc002 ? "work end:" : "工作结果时间：") + apps::CTime());
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "000 §4 / 002 例1.4: join a daemonic child");
  mp::Process p(worker, 3);
  p.set_daemon(true);
  p.start();
  p.join();
  apps::Print(FLAGS_document == "002" ? "end!" : "【EMD】");
}
