#!/usr/bin/python3
"""Test peers for the netns HBONE tests (stdlib only).

  tcp_tool.py serve IP                  echo on IP:8080; sha256-after-EOF on IP:8081
  tcp_tool.py send IP PORT BYTES        send BYTES (seeded random), half-close, read until EOF;
                                        prints "sent=<sha256> recv=<sha256> recv_bytes=N"
  tcp_tool.py many IP PORT N BYTES HOLD N concurrent echo connections, held open HOLD seconds
                                        after their exchange; prints "ok=K of N"
"""
import hashlib
import random
import socket
import sys
import threading
import time


def log(msg):
    print(msg, flush=True)


def echo(conn, peer):
    log(f"echo: connection from {peer[0]}:{peer[1]}")
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                conn.shutdown(socket.SHUT_WR)
                return
            conn.sendall(data)


def digest_after_eof(conn, peer):
    log(f"digest: connection from {peer[0]}:{peer[1]}")
    with conn:
        h = hashlib.sha256()
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        conn.sendall(f"{h.hexdigest()} {n}\n".encode())


def listen(ip, port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(256)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=handler, args=(conn, peer), daemon=True).start()


def payload(size, seed=1):
    return random.Random(seed).randbytes(size)


def exchange(ip, port, data):
    s = socket.create_connection((ip, port), timeout=60)
    received = bytearray()

    def reader():
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join()
    return s, bytes(received)


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        ip = sys.argv[2]
        threading.Thread(target=listen, args=(ip, 8081, digest_after_eof), daemon=True).start()
        listen(ip, 8080, echo)
    elif cmd == "send":
        ip, port, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = payload(size)
        s, got = exchange(ip, port, data)
        s.close()
        text = got[:80].decode(errors="replace").strip() if len(got) < 100 else "-"
        print(f"sent={hashlib.sha256(data).hexdigest()} recv={hashlib.sha256(got).hexdigest()} "
              f"recv_bytes={len(got)} recv_text={text}")
    elif cmd == "many":
        ip, port, n, size, hold = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
        ok = []
        socks = []
        lock = threading.Lock()

        def one(i):
            data = payload(size, seed=i)
            s, got = exchange(ip, port, data)
            with lock:
                socks.append(s)
                if got == data:
                    ok.append(i)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"ok={len(ok)} of {n}", flush=True)
        time.sleep(hold)
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
