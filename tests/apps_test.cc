// Runs every documented example and checks its output against the
// document's: exact lines where the output is deterministic, and otherwise
// the orderings the document guarantees. A changed message or a broken
// order fails here.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "process/process.h"
#include "tests/run_binary.h"

namespace {

using mp::testing::RunBinary;
using mp::testing::RunResult;
using Lines = std::vector<std::string>;

// Sleeps of the examples run 20x faster than in the documents.
RunResult RunApp(const std::string& app, std::vector<std::string> args = {}, const std::string& input = "") {
  args.insert(args.begin(), "--time_scale=0.05");
  return RunBinary("apps/" + app, args, input);
}

// The position of the first line matching `pattern` (a regex), or -1.
int Find(const Lines& lines, const std::string& pattern) {
  const std::regex re(pattern);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (std::regex_match(lines[i], re)) return static_cast<int>(i);
  }
  return -1;
}

int Count(const Lines& lines, const std::string& pattern) {
  const std::regex re(pattern);
  return static_cast<int>(std::count_if(lines.begin(), lines.end(),
                                        [&](const std::string& l) { return std::regex_match(l, re); }));
}

// Lines without the ones matching `pattern`.
Lines Without(Lines lines, const std::string& pattern) {
  const std::regex re(pattern);
  std::erase_if(lines, [&](const std::string& l) { return std::regex_match(l, re); });
  return lines;
}

const std::string kCTime = R"([A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4})";

TEST(Apps, MultiWorkers) {
  RunResult r = RunApp("process/multi_workers");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Lines l = r.lines();
  EXPECT_EQ(l.size(), 11u);
  EXPECT_GE(Find(l, "The number of CPU is:" + std::to_string(mp::cpu_count())), 0);
  EXPECT_EQ(Count(l, "child   p\\.name:Process-[123]\tp\\.id\\d+"), 3);
  EXPECT_GE(Find(l, "END!!!!!!!!!!!!!!!!!"), 0);
  for (int i = 1; i <= 3; ++i) {
    const std::string who = "两点水" + std::to_string(i);
    EXPECT_LT(Find(l, who + "【start】"), Find(l, who + "【end】"));
  }
  EXPECT_LT(Find(l, "两点水1【end】"), Find(l, "两点水2【end】"));
  EXPECT_LT(Find(l, "两点水2【end】"), Find(l, "两点水3【end】"));
}

TEST(Apps, ClockProcessBothDocuments) {
  RunResult r = RunApp("process/clock_process");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Count(r.lines(), "当前时间: " + kCTime), 5);
  EXPECT_EQ(r.lines().size(), 5u);
  r = RunApp("process/clock_process", {"--document=002"});
  EXPECT_EQ(Count(r.lines(), "the time is " + kCTime), 3);
  EXPECT_EQ(r.lines().size(), 3u);
}

TEST(Apps, DaemonExamples) {
  RunResult no = RunApp("process/daemon_no");
  ASSERT_EQ(no.exit_code, 0);
  Lines l = no.lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_GE(Find(l, "【EMD】"), 0);
  EXPECT_LT(Find(l, "工作开始时间：" + kCTime), Find(l, "工作结果时间：" + kCTime));

  // The daemonic child is terminated when the parent ends, so it never gets
  // to its end line. (Python usually shows only 【EMD】 because its child's
  // buffered output dies with it; ours flushes each line, so the child's
  // first line may appear if it starts before the parent exits.)
  RunResult yes = RunApp("process/daemon_yes");
  l = yes.lines();
  EXPECT_GE(Find(l, "【EMD】"), 0);
  EXPECT_LE(l.size(), 2u);
  EXPECT_EQ(Find(l, "工作结果时间：.*"), -1);

  RunResult join = RunApp("process/daemon_join");
  l = join.lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(std::regex_match(l[0], std::regex("工作开始时间：" + kCTime)));
  EXPECT_TRUE(std::regex_match(l[1], std::regex("工作结果时间：" + kCTime)));
  EXPECT_EQ(l[2], "【EMD】");
  l = RunApp("process/daemon_join", {"--document=002"}).lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(std::regex_match(l[0], std::regex("work start:" + kCTime)));
  EXPECT_EQ(l[2], "end!");
}

TEST(Apps, TwoLoopsAndTwoWorkersAreBounded) {
  Lines l = RunApp("process/two_loops", {"--iterations=3"}).lines();
  EXPECT_EQ(Count(l, "----1----"), 3);
  EXPECT_EQ(Count(l, "----2----"), 3);
  l = RunApp("process/two_workers", {"--iterations=3"}).lines();
  EXPECT_EQ(Count(l, "1--------"), 3);
  EXPECT_EQ(Count(l, "2--------"), 3);
}

TEST(Apps, PidArgsAndGlobals) {
  Lines l = RunApp("process/pid").lines();
  ASSERT_EQ(l.size(), 3u);
  std::smatch parent, child;
  ASSERT_TRUE(std::regex_match(l[0], parent, std::regex("父进程pid: (\\d+)")));
  ASSERT_TRUE(std::regex_match(l[1], child, std::regex("子进程运行中，pid=(\\d+)\\.\\.\\.")));
  EXPECT_NE(parent[1], child[1]);
  EXPECT_EQ(l[2], "子进程将要结束...");

  l = RunApp("process/args_kwargs").lines();
  ASSERT_GE(l.size(), 4u);
  EXPECT_LE(l.size(), 14u);  // Terminated after 1 s (scaled) of ten 0.2 s rounds.
  // Two lines a round; the terminate may fall between a round's two prints.
  for (size_t i = 0; i < l.size(); i += 2) {
    EXPECT_TRUE(std::regex_match(l[i], std::regex("子进程运行中，name= test,age=18 ,pid=\\d+\\.\\.\\.")));
    if (i + 1 < l.size()) {
      EXPECT_EQ(l[i + 1], "{'m': 20}");
    }
  }

  l = Without(RunApp("process/globals_not_shared").lines(), "");
  const Lines expected{"in process1 pid=P ,nums=[11, 22]", "in process1 pid=P ,nums=[11, 22, 0]",
                       "in process1 pid=P ,nums=[11, 22, 0, 1]",
                       "in process1 pid=P ,nums=[11, 22, 0, 1, 2]", "in process2 pid=P ,nums=[11, 22]"};
  ASSERT_EQ(l.size(), expected.size());
  for (size_t i = 0; i < l.size(); ++i) {
    EXPECT_EQ(std::regex_replace(l[i], std::regex("pid=\\d+"), "pid=P"), expected[i]);
  }

  l = RunApp("process/exercise_globals").lines();
  EXPECT_EQ(std::set<std::string>(l.begin(), l.end()),
            (std::set<std::string>{"子进程内:  0", "主进程内:  100"}));
}

TEST(Apps, ProcessInfoAndCpuCount) {
  Lines l = RunApp("process/process_info").lines();
  ASSERT_EQ(l.size(), 6u);
  EXPECT_GE(Find(l, "p\\.pid: \\d+"), 0);
  EXPECT_GE(Find(l, "p\\.name: Process-1"), 0);
  EXPECT_GE(Find(l, "p\\.is_alive: True"), 0);
  EXPECT_EQ(Count(l, "The time is " + kCTime), 3);

  l = RunApp("process/cpu_count_children").lines();
  EXPECT_GE(Find(l, "The number of CPU is:" + std::to_string(mp::cpu_count())), 0);
  EXPECT_EQ(Count(l, "child   p\\.name:Process-[12]\tp\\.id\\d+"), 2);
  EXPECT_LT(Find(l, "worker_1"), Find(l, "end worker_1"));
  EXPECT_LT(Find(l, "worker_2"), Find(l, "end worker_2"));
  EXPECT_LT(Find(l, "END!+"), Find(l, "end worker_1"));
}

TEST(Apps, MikesWatch) {
  Lines l = RunApp("process/watch_pid").lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(std::regex_match(l[0], std::regex("I\\(\\d+\\) am asking time\\.")));
  EXPECT_TRUE(std::regex_match(l[1], std::regex("Mike\\(\\d+\\) is looking at his/her watch")));
  EXPECT_TRUE(std::regex_match(l[2], std::regex("Mike\\(\\d+\\)'s Watch says it is " + kCTime)));

  RunResult global = RunApp("process/watch_global");
  EXPECT_EQ(global.exit_code, 1);
  EXPECT_EQ(global.lines().size(), 3u);
  EXPECT_NE(global.err.find("NameError: name 'now' is not defined"), std::string::npos);

  l = RunApp("ipc/pipe_watch").lines();
  ASSERT_EQ(l.size(), 4u);
  std::smatch said, seen;
  ASSERT_TRUE(std::regex_match(l[2], said, std::regex("Mike\\(\\d+\\)'s Watch says it is (.*)")));
  ASSERT_TRUE(std::regex_match(l[3], seen, std::regex("I see Mike's watch says: (.*)")));
  EXPECT_EQ(said[1], seen[1]);
}

TEST(Apps, PiaoBothWays) {
  for (const char* app : {"process/piao", "process/piao_class"}) {
    Lines l = RunApp(app).lines();
    EXPECT_EQ(l.size(), 9u) << app;
    EXPECT_GE(Find(l, "主"), 0);
    for (const char* name : {"egon", "alex", "yuanhao"}) {
      EXPECT_LT(Find(l, std::string(name) + " piaoing"), Find(l, std::string(name) + " piao end"));
    }
  }
}

TEST(Apps, LockFileAndHello) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string file = std::string(tmp ? tmp : "/tmp") + "/lock_file.txt";
  Lines l = RunApp("sync/lock_file", {"--file=" + file}).lines();
  ASSERT_EQ(l.size(), 9u);
  EXPECT_EQ(l[0], "end");
  // Each process's four lines stay together: the lock kept them apart.
  Lines body(l.begin() + 1, l.end());
  const Lines with(4, "Lockd acquired via with"), direct(4, "Lock acquired directly");
  Lines a = with, b = direct;
  a.insert(a.end(), direct.begin(), direct.end());
  b.insert(b.end(), with.begin(), with.end());
  EXPECT_TRUE(body == a || body == b);

  l = RunApp("sync/lock_hello").lines();
  std::set<std::string> got(l.begin(), l.end());
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(got.count("hello world " + std::to_string(i)));
}

TEST(Apps, SemaphoreNeverHasMoreThanTwoHolders) {
  Lines l = Without(RunApp("sync/semaphore").lines(), "");
  ASSERT_EQ(l.size(), 6u);
  int holders = 0, most = 0;
  for (const auto& line : l) {
    if (std::regex_match(line, std::regex("Process-[123]acquire"))) most = std::max(most, ++holders);
    if (std::regex_match(line, std::regex("Process-[123]release"))) --holders;
  }
  EXPECT_EQ(most, 2);
  EXPECT_EQ(holders, 0);
}

TEST(Apps, Event) {
  Lines l = RunApp("sync/event").lines();
  ASSERT_EQ(l.size(), 5u);
  EXPECT_LT(Find(l, "wait_for_event_timeout:e\\.is_set->False"), Find(l, "main: event is set"));
  EXPECT_LT(Find(l, "wait_for_event: starting"), Find(l, "wairt_for_event: e\\.is_set\\(\\)->True"));
  EXPECT_GE(Find(l, "wait_for_event_timeout:starting"), 0);
}

TEST(Apps, Queues) {
  Lines l = RunApp("ipc/queue_write_read").lines();
  ASSERT_EQ(l.size(), 8u);
  for (const char* v : {"两点水", "三点水", "四点水"}) {
    EXPECT_LT(Find(l, std::string("写进 Queue 的值为：") + v), Find(l, std::string("从 Queue 读取的值为：") + v));
  }
  EXPECT_EQ(RunApp("ipc/queue_basics").lines(),
            (Lines{"False", "True", "消息列队已满，现有消息数量:3", "消息列队已满，现有消息数量:3",
                   "消息1", "消息2", "消息3"}));
  l = RunApp("ipc/queue_download_analysis").lines();
  ASSERT_EQ(l.size(), 2u);
  EXPECT_GE(Find(l, "---下载器已经下载完了数据并且存入到队列中----"), 0);
  EXPECT_GE(Find(l, "\\[11(, 22(, 33(, 44)?)?)?\\]"), 0);
  EXPECT_EQ(RunApp("ipc/queue_write_then_read").lines(),
            (Lines{"Put A to queue...", "Put B to queue...", "Put C to queue...", "Get A from queue.",
                   "Get B from queue.", "Get C from queue.", "", "所有数据都写入并且读完"}));
  EXPECT_EQ(RunApp("ipc/queue_writer_nowait").lines(), Lines{"1"});
  EXPECT_EQ(RunApp("ipc/queue_list").lines(), Lines{"[42, None, 'hello']"});
}

TEST(Apps, Pipe) {
  Lines l = RunApp("ipc/pipe_proc").lines();
  ASSERT_EQ(l.size(), 10u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_LT(Find(l, "send: " + std::to_string(i)), Find(l, "proc2 rev: " + std::to_string(i)));
  }
}

TEST(Apps, PoolLongTimeTask) {
  Lines l = RunApp("pool/long_time_task").lines();
  ASSERT_EQ(l.size(), 14u);
  EXPECT_TRUE(std::regex_match(l.front(), std::regex("主进程的 PID：\\d+")));
  EXPECT_EQ(l.back(), "【End】");
  std::set<std::string> pids;
  for (const auto& line : l) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex("进程的名称：\\d ；进程的PID: (\\d+) "))) pids.insert(m[1]);
  }
  EXPECT_LE(pids.size(), 4u);
  EXPECT_EQ(Count(l, "进程 \\d 运行了 [0-9.e-]+ 秒"), 6);
  // Pool(4): the fifth task starts only after one of the first four ended.
  EXPECT_GT(Find(l, "进程的名称：[45] ；进程的PID: \\d+ "), Find(l, "进程 \\d 运行了 .* 秒"));
}

TEST(Apps, PoolWorkersAndApplyAsync) {
  Lines l = RunApp("pool/pool_workers").lines();
  ASSERT_EQ(l.size(), 22u);
  EXPECT_EQ(l.back(), "-----end-----");
  for (int i = 0; i < 10; ++i) {
    EXPECT_LT(Find(l, std::to_string(i) + "开始执行,进程号为\\d+"),
              Find(l, std::to_string(i) + " 执行完毕，耗时\\d+\\.\\d\\d"));
  }
  l = RunApp("pool/apply_async").lines();
  ASSERT_EQ(l.size(), 10u);
  EXPECT_EQ(Count(l, "msg: hello [0-3]"), 4);
  EXPECT_EQ(Count(l, "end"), 4);
  EXPECT_EQ(l.back(), "Sub-process(es) done.");
  l = RunApp("pool/apply_async_results").lines();
  ASSERT_EQ(l.size(), 10u);
  EXPECT_EQ(Lines(l.end() - 4, l.end()),
            (Lines{"::: donehello 0", "::: donehello 1", "::: donehello 2", "Sub-process(es) done."}));
}

TEST(Apps, ManagerQueueBetweenPoolWorkers) {
  Lines l = RunApp("pool/manager_queue").lines();
  ASSERT_EQ(l.size(), 10u);
  std::smatch start;
  ASSERT_TRUE(std::regex_match(l[0], start, std::regex("\\((\\d+)\\) start")));
  const std::string main_pid = start[1];
  EXPECT_TRUE(std::regex_match(l[1], std::regex("writer启动\\(\\d+\\),父进程为\\(" + main_pid + "\\)")));
  EXPECT_TRUE(std::regex_match(l[2], std::regex("reader启动\\(\\d+\\),父进程为\\(" + main_pid + "\\)")));
  const Lines got(l.begin() + 3, l.begin() + 9);
  Lines expected;
  for (char c : std::string("itcast")) expected.push_back(std::string("reader从Queue获取到消息：") + c);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(l[9], "(" + main_pid + ") End");
}

}  // namespace
