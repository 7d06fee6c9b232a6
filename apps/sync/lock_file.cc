// 002 §2: two processes append to one file under a Lock, one with `with`
// (std::lock_guard), one with acquire/try/finally release.
// Beyond the document's code: the file is emptied first and, after "end",
// the parent waits for both and prints the file, which is what the
// document shows as the result.
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "process/process.h"
#include "sync/synchronize.h"

DEFINE_string(file, "file.txt", "the file both processes append to");

void worker_with(mp::Lock lock, std::string f) {
  std::lock_guard<mp::Lock> with(lock);
  std::ofstream fs(f, std::ios::app);
  int n = 5;
  while (n > 1) {
    fs << "Lockd acquired via with\n";
    n -= 1;
  }
}

void worker_no_with(mp::Lock lock, std::string f) {
  lock.acquire();
  try {
    std::ofstream fs(f, std::ios::app);
    int n = 5;
    while (n > 1) {
      fs << "Lock acquired directly\n";
      n -= 1;
    }
  } catch (...) {
    lock.release();
    throw;
  }
  lock.release();
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "002 §2: Lock, with and without `with`");
  mp::Lock lock;
  std::string f = FLAGS_file;
  std::ofstream(f, std::ios::trunc).close();
  mp::Process w(worker_with, lock, f);
  mp::Process nw(worker_no_with, lock, f);
  w.start();
  nw.start();
  apps::Print("end");

  w.join();
  nw.join();
  std::ifstream in(f);
  for (std::string line; std::getline(in, line);) apps::Print(line);
}
