// 001 6.4 §2, first version: a downloader puts data in a Queue, an analyser
// takes it until the queue is empty. (As in the document, the analyser may
// find the queue empty before the downloader is done, and then prints less.)
#include <vector>

#include "apps/common/app.h"
#include "ipc/queue.h"
#include "process/process.h"

void download_from_web(mp::Queue<int> q) {
  // 模拟从网上下载的数据
  std::vector<int> data = {11, 22, 33, 44};
  // 向队列中写入数据（只管往里放）
  for (int temp : data) q.put(temp);
  apps::Print("---下载器已经下载完了数据并且存入到队列中----");
}

void analysis_data(mp::Queue<int> q) {
  std::vector<int> waitting_analysis_data;
  // 从队列中获取数据
  while (true) {
    int data = q.get();                       // 取数据
    waitting_analysis_data.push_back(data);   // 存储数据
    if (q.empty()) break;                     // 队列空了就结束循环
  }
  // 模拟数据处理
  apps::Print(apps::PyList(waitting_analysis_data));
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.4 §2: downloader and analyser");
  // 1. 创建一个队列
  mp::Queue<int> q;
  // 2. 创建多个进程，将队列的引用当做实参进行传递到里面
  mp::Process p1(download_from_web, q);
  mp::Process p2(analysis_data, q);
  p1.start();
  p2.start();
}
