#!/usr/bin/env python3
# The document's design (004 练习 3): a TCP server that serves each client in
# a process of its own, upper-casing what it receives. Usage: echo_server.py PORT
# (0: a free port, printed as "PORT <n>").
import multiprocessing
import socket
import sys


def talk(conn):
    while True:
        data = conn.recv(1024)
        if not data:
            break
        conn.send(data.upper())
    conn.close()


if __name__ == "__main__":
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    server.listen(1024)
    print("PORT", server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        p = multiprocessing.Process(target=talk, args=(conn,))
        p.start()
        conn.close()
        multiprocessing.active_children()
