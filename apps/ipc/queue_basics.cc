// 001 6.4 §1: Queue(3): full, qsize, put with a timeout, put_nowait.
#include <string>

#include "apps/common/app.h"
#include "ipc/queue.h"

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.4 §1: Queue basics");
  mp::Queue<std::string> q(3);  // 初始化一个Queue对象，最多可接收三条put消息
  q.put("消息1");
  q.put("消息2");
  apps::Print(q.full() ? "True" : "False");  // False
  q.put("消息3");
  apps::Print(q.full() ? "True" : "False");  // True
  // 因为消息列队已满下面的try都会抛出异常，第一个try会等待2秒后再抛出异常，第二个Try会立刻抛出异常
  try {
    q.put("消息4", std::chrono::duration<double>(apps::Scaled(2)));  // 等两秒再存消息
  } catch (const mp::Full&) {
    apps::Print("消息列队已满，现有消息数量:" + std::to_string(q.qsize()));
  }
  try {
    q.put_nowait("消息4");  // 不想等直接就要往里存消息
  } catch (const mp::Full&) {
    apps::Print("消息列队已满，现有消息数量:" + std::to_string(q.qsize()));
  }
  // 推荐的方式，先判断消息列队是否已满，再写入
  if (!q.full()) q.put_nowait("消息4");
  // 读取消息时，先判断消息列队是否为空，再读取
  if (!q.empty()) {
    for (long i = 0, n = q.qsize(); i < n; ++i) apps::Print(q.get_nowait());
  }
}
