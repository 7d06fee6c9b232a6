// 002 §5: a writer process puts without blocking; the parent reads it.
// (The document elides the rest with "..."; the parent prints what it got.)
#include <string>

#include "apps/common/app.h"
#include "ipc/queue.h"
#include "process/process.h"

void writer_proc(mp::Queue<int> q) { q.put(1, /*block=*/false); }

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 §5: put(block=False)");
  mp::Queue<int> q;
  mp::Process writer(writer_proc, q);
  writer.start();
  writer.join();
  apps::Print(std::to_string(q.get()));
}
