// 001 6.6 第三版: copy in 1024-byte chunks (with the document's random
// sleeps) into "<folder>[副本]" with Pool(3), showing the rate and the last
// file done.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "manager/manager.h"
#include "pool/pool.h"

DEFINE_string(folder, "", "the folder to copy (asked on stdin when empty)");

void copy_file(mp::proxy::Queue<std::string> queue, std::string file_name,
               std::string source_folder_name, std::string dest_folder_name) {
  // copy文件到指定的路径
  std::ifstream f_read(source_folder_name + "/" + file_name, std::ios::binary);
  std::ofstream f_write(dest_folder_name + "/" + file_name, std::ios::binary);
  char content[1024];
  while (true) {
    apps::Sleep(apps::Random());
    f_read.read(content, sizeof content);
    if (f_read.gcount() > 0) {
      f_write.write(content, f_read.gcount());
    } else {
      break;
    }
  }
  f_read.close();
  f_write.close();
  // 发送已经拷贝完毕的文件名字
  queue.put(file_name);
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.6 第三版: chunked copier with source and destination");
  // 获取要复制的文件夹
  std::string source_folder_name = FLAGS_folder;
  if (source_folder_name.empty()) {
    apps::PrintNoNewline("请输入要复制文件夹名字:");
    std::getline(std::cin, source_folder_name);
  }
  // 整理目标文件夹
  std::string dest_folder_name = source_folder_name + "[副本]";
  // 创建目标文件夹
  std::error_code ignored;  // 如果文件夹已经存在，那么创建会失败
  std::filesystem::create_directory(dest_folder_name, ignored);
  // 获取这个文件夹中所有的普通文件名
  std::vector<std::string> file_names;
  for (const auto& entry : std::filesystem::directory_iterator(source_folder_name)) {
    file_names.push_back(entry.path().filename().string());
  }
  // 创建Queue
  mp::Manager manager;
  auto queue = manager.Queue<std::string>();
  // 创建进程池
  mp::Pool pool(3);
  for (const auto& file_name : file_names) {
    // 向进程池中添加任务
    pool.apply_async(copy_file, queue, file_name, source_folder_name, dest_folder_name);
  }
  // 主进程显示进度
  pool.close();
  const size_t all_file_num = file_names.size();
  while (true) {
    std::string file_name = queue.get();
    auto it = std::find(file_names.begin(), file_names.end(), file_name);
    if (it != file_names.end()) file_names.erase(it);
    const double copy_rate = (all_file_num - file_names.size()) * 100.0 / all_file_num;
    apps::PrintNoNewline(absl::StrFormat("\r%.2f...(%s)", copy_rate, file_name) + std::string(50, ' '));
    if (copy_rate >= 100) break;
  }
  apps::Print("");
  pool.join();
}
