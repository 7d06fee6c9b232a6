// 001 6.6 初始版本: copy every file of a folder into "<folder>[复件]" with
// Pool(5). The folder name is read like input() unless --folder is given.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "pool/pool.h"

DEFINE_string(folder, "", "the folder to copy (asked on stdin when empty)");

void copy_file(std::string file_name, std::string old_folder_name, std::string new_folder_name) {
  // 完成文件的复制
  apps::Print(absl::StrFormat("======>模拟copy文件：从%s--->到%s 文件名是:%s", old_folder_name,
                              new_folder_name, file_name));
  std::ifstream old_f(old_folder_name + "/" + file_name, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(old_f)), std::istreambuf_iterator<char>());
  old_f.close();
  std::ofstream new_f(new_folder_name + "/" + file_name, std::ios::binary);
  new_f.write(content.data(), static_cast<std::streamsize>(content.size()));
  new_f.close();
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "001 6.6 初始版本: the folder copier");
  // 1. 获取用户要copy的文件夹的名字
  std::string old_folder_name = FLAGS_folder;
  if (old_folder_name.empty()) {
    apps::PrintNoNewline("请输入要copy的文件夹的名字：");
    std::getline(std::cin, old_folder_name);
  }
  // 2. 创建一个新的文件夹
  std::string new_folder_name = old_folder_name + "[复件]";
  std::error_code ignored;  // Python: try: os.mkdir(...) except: pass
  std::filesystem::create_directory(new_folder_name, ignored);
  // 3. 获取文件夹的所有的待copy的文件名字  listdir()
  std::vector<std::string> file_names;
  for (const auto& entry : std::filesystem::directory_iterator(old_folder_name)) {
    file_names.push_back(entry.path().filename().string());
  }
  std::vector<std::string> quoted;
  for (const auto& f : file_names) quoted.push_back("'" + f + "'");
  apps::Print("[" + absl::StrJoin(quoted, ", ") + "]");
  // 4. 创建进程池
  mp::Pool po(5);
  // 5. 向进程池中添加 copy文件的任务
  for (const auto& file_name : file_names) {
    po.apply_async(copy_file, file_name, old_folder_name, new_folder_name);
  }
  po.close();  // 关闭进程池不再像进程池中存储任务
  po.join();
}
