// 001 6.6 打印进度版本: the copier reports progress through a
// Manager().Queue(): each task puts its file name when done, the parent
// prints the percentage.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "manager/manager.h"
#include "pool/pool.h"

DEFINE_string(folder, "", "the folder to copy (asked on stdin when empty)");

void copy_file(mp::proxy::Queue<std::string> q, std::string file_name, std::string old_folder_name,
               std::string new_folder_name) {
  std::ifstream old_f(old_folder_name + "/" + file_name, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(old_f)), std::istreambuf_iterator<char>());
  old_f.close();
  std::ofstream new_f(new_folder_name + "/" + file_name, std::ios::binary);
  new_f.write(content.data(), static_cast<std::streamsize>(content.size()));
  new_f.close();
  // 如果拷贝完了文件，那么就向队列中写入一个消息，表示已经完成
  q.put(file_name);
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.6 打印进度版本: the copier with progress");
  // 1. 获取用户要copy的文件夹的名字
  std::string old_folder_name = FLAGS_folder;
  if (old_folder_name.empty()) {
    apps::PrintNoNewline("请输入要copy的文件夹的名字：");
    std::getline(std::cin, old_folder_name);
  }
  // 2. 创建一个新的文件夹
  std::string new_folder_name = old_folder_name + "[复件]";
  std::error_code ignored;
  std::filesystem::create_directory(new_folder_name, ignored);
  // 3. 获取文件夹的所有的待copy的文件名字  listdir()
  std::vector<std::string> file_names;
  for (const auto& entry : std::filesystem::directory_iterator(old_folder_name)) {
    file_names.push_back(entry.path().filename().string());
  }
  // 4. 创建进程池
  mp::Pool po(5);
  // 5. 创建一个队列
  mp::Manager manager;
  auto q = manager.Queue<std::string>();  // 这里必须使用的是Manager的队列
  // 6. 向进程池中添加 copy文件的任务
  for (const auto& file_name : file_names) {
    po.apply_async(copy_file, q, file_name, old_folder_name, new_folder_name);
  }
  po.close();
  const size_t all_file_num = file_names.size();  // 测一下所有的文件个数
  size_t copy_ok_num = 0;                          // 拷贝完的文件的个数进行初始化
  while (copy_ok_num < all_file_num) {
    std::string file_name = q.get();  // 往外取拷贝完了的文件名,获取到了就加一
    copy_ok_num += 1;
    apps::PrintNoNewline(absl::StrFormat("\r拷贝的进度为：%.2f %%", copy_ok_num * 100.0 / all_file_num));
  }
  apps::Print("");
  po.join();
}
