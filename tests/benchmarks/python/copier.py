#!/usr/bin/env python3
# The copier of document 001 6.6 ("打印进度版本"), adapted for benchmarking:
# it takes SRC and DST paths instead of input(), and recurses into
# subfolders (the document's copies only the top folder). Pool(3) and a
# Manager().Queue() for progress, as in the document.
import multiprocessing
import os
import sys


def copy_file(q, rel, old_folder_name, new_folder_name):
    with open(os.path.join(old_folder_name, rel), "rb") as old_f:
        content = old_f.read()
    with open(os.path.join(new_folder_name, rel), "wb") as new_f:
        new_f.write(content)
    q.put(rel)


def main():
    old_folder_name, new_folder_name = sys.argv[1], sys.argv[2]
    file_names = []
    for root, dirs, files in os.walk(old_folder_name):
        rel_root = os.path.relpath(root, old_folder_name)
        os.makedirs(os.path.join(new_folder_name, rel_root), exist_ok=True)
        for f in files:
            file_names.append(os.path.normpath(os.path.join(rel_root, f)))
    po = multiprocessing.Pool(3)
    q = multiprocessing.Manager().Queue()
    for file_name in file_names:
        po.apply_async(copy_file, args=(q, file_name, old_folder_name, new_folder_name))
    po.close()
    copy_ok_num = 0
    while copy_ok_num < len(file_names):
        q.get()
        copy_ok_num += 1
    po.join()


if __name__ == "__main__":
    main()
