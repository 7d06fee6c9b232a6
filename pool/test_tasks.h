// Task functions shared by the Pool tests (local and MPI): each a plain
// function, as Pool tasks must be.
#ifndef POOL_TEST_TASKS_H_
#define POOL_TEST_TASKS_H_

#include <string>

namespace mp::test_tasks {

int Square(int x);
int Add(int a, int b);
std::string Greet(std::string name);
void Nothing();
int MyPid(int);
std::string WorkerName(int);
// Fail throws mp::ValueError("three is bad") for 3, else returns x.
int Fail(int x);
// CrashOn SIGKILLs its own process for 5, else returns x.
int CrashOn(int x);
// SleepMs sleeps `ms` milliseconds and returns it.
int SleepMs(int ms);

}  // namespace mp::test_tasks

#endif  // POOL_TEST_TASKS_H_
