#!/usr/bin/python3
"""Test peers for the netns HBONE tests (stdlib only).

  tcp_tool.py serve IP                  echo on IP:8080; sha256-after-EOF on IP:8081
  tcp_tool.py send IP PORT BYTES        send BYTES (seeded random), half-close, read until EOF;
                                        prints "sent=<sha256> recv=<sha256> recv_bytes=N
                                        recv_text=T error=E" (E: "-" or why the exchange broke)

  TCP_TOOL_MARK=N sets SO_MARK N on client sockets (root), so capture rules
  that skip ztunnel's mark skip the client too.
  tcp_tool.py many IP PORT N BYTES HOLD N concurrent echo connections, held open HOLD seconds
                                        after their exchange; prints "ok=K of N"
"""
import hashlib
import os
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


def connect(ip, port):
    s = socket.socket()
    mark = os.environ.get("TCP_TOOL_MARK")
    if mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, int(mark, 0))
    s.settimeout(60)
    s.connect((ip, port))
    return s


def exchange(ip, port, data, errors=None):
    """Returns (socket, bytes received); errors, when given, collects what broke."""
    s = connect(ip, port)
    received = bytearray()

    def reader():
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)
        except OSError as e:
            if errors is None:
                raise
            errors.append(f"recv: {e.strerror or e}")

    t = threading.Thread(target=reader)
    t.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        if errors is None:
            raise
        errors.append(f"send: {e.strerror or e}")
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
        errors = []
        s, got = exchange(ip, port, data, errors)
        s.close()
        text = got[:80].decode(errors="replace").strip() if len(got) < 100 else "-"
        print(f"sent={hashlib.sha256(data).hexdigest()} recv={hashlib.sha256(got).hexdigest()} "
              f"recv_bytes={len(got)} recv_text={text} error={'; '.join(errors) or '-'}")
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
