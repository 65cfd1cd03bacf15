#!/usr/bin/python3
"""Test peers for the netns HBONE tests (stdlib only).

  tcp_tool.py serve IP [PORT...]        echo on IP:8080 (and on each extra PORT);
                                        sha256-after-EOF on IP:8081; server-first banner
                                        on IP:8082
  tcp_tool.py send IP PORT BYTES        send BYTES (seeded random), half-close, read until EOF;
                                        prints "sent=<sha256> recv=<sha256> recv_bytes=N
                                        end=eof|reset(errno) recv_text=T error=E"
                                        (E: "-" or how the exchange broke)
  tcp_tool.py many IP PORT N BYTES HOLD N concurrent echo connections, held open HOLD seconds
                                        after their exchange; prints "ok=K of N"
  tcp_tool.py hold IP PORT N BYTES RELEASE
                                        N concurrent echo connections, each echoing BYTES of its
                                        own data and then held open; prints "open=K of N" once
                                        all are open at once, waits for the file RELEASE, then
                                        half-closes all; prints "closed=K of N" (clean EOFs)
  tcp_tool.py read IP PORT              sends nothing, reads until EOF; prints "recv=<text>"
  tcp_tool.py ping IP PORT SECONDS      one connection, a line echoed every 0.1 s for SECONDS;
                                        prints "open" after the first echo, then
                                        "pings=N after=T ended=none|eof|reset(errno)|timeout"
                                        (T: seconds from open to the end)
  tcp_tool.py stream IP PORT            sends forever while reading the echo; prints "flowing"
                                        once 1 MiB came back, then "ended by=eof|reset(errno) ..."
                                        when the connection ends (it never ends cleanly)

  TCP_TOOL_MARK=N sets SO_MARK N on client sockets (root), so capture rules
  that skip ztunnel's mark skip the client too.
"""
import errno
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
    log(f"echo: connection from {peer[0]}:{peer[1]} to port {conn.getsockname()[1]}")
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


BANNER = b"220 server speaks first\n"


def banner_first(conn, peer):
    # Writes before reading anything: a proxy waiting for client bytes stalls here.
    log(f"banner: connection from {peer[0]}:{peer[1]}")
    with conn:
        conn.sendall(BANNER)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass


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


def exchange(ip, port, data):
    """Sends data, half-closes, reads until EOF. A reset ends it early: the
    caller compares what came back, and `end` says how it ended."""
    s = connect(ip, port)
    received = bytearray()
    end = {"how": "eof"}

    def reader():
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)
        except OSError as e:
            end["how"] = f"reset({e.errno})"

    t = threading.Thread(target=reader)
    t.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the reader sees the same reset
    t.join()
    return s, bytes(received), end["how"]


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        ip = sys.argv[2]
        threading.Thread(target=listen, args=(ip, 8081, digest_after_eof), daemon=True).start()
        threading.Thread(target=listen, args=(ip, 8082, banner_first), daemon=True).start()
        for extra in sys.argv[3:]:
            threading.Thread(target=listen, args=(ip, int(extra), echo), daemon=True).start()
        listen(ip, 8080, echo)
    elif cmd == "send":
        ip, port, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = payload(size)
        try:
            s, got, end = exchange(ip, port, data)
            s.close()
        except OSError as e:
            # Refused (reset) before the handshake completed: nothing was exchanged.
            got, end = b"", f"connect-reset({e.errno})"
        text = got[:80].decode(errors="replace").strip() if len(got) < 100 else "-"
        print(f"sent={hashlib.sha256(data).hexdigest()} recv={hashlib.sha256(got).hexdigest()} "
              f"recv_bytes={len(got)} end={end} recv_text={text} "
              f"error={'-' if end == 'eof' else end}")
    elif cmd == "many":
        ip, port, n, size, hold = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
        ok = []
        socks = []
        lock = threading.Lock()

        def one(i):
            data = payload(size, seed=i)
            s, got, _ = exchange(ip, port, data)
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
    elif cmd == "hold":
        hold_open(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    elif cmd == "read":
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=20)
        got = bytearray()
        while chunk := s.recv(65536):
            got.extend(chunk)
        s.close()
        print(f"recv={got.decode(errors='replace').strip()} recv_bytes={len(got)}")
    elif cmd == "stream":
        stream_until_cut(sys.argv[2], int(sys.argv[3]))
    elif cmd == "ping":
        ping(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))


def ping(ip, port, seconds):
    """Keeps one connection busy with small echoes; reports how and when it ended."""
    s = connect(ip, port)
    s.settimeout(2)
    pings = 0
    opened = None
    ended = "none"
    line = b"ping\n"
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            s.sendall(line)
            got = recv_exactly(s, len(line))
            if got != line:
                ended = "eof"
                break
            pings += 1
            if opened is None:
                opened = time.monotonic()
                log("open")
            time.sleep(0.1)
    except socket.timeout:
        ended = "timeout"
    except OSError as e:
        ended = f"reset({e.errno})"
    after = time.monotonic() - (opened or time.monotonic())
    s.close()
    log(f"pings={pings} after={after:.1f} ended={ended}")


def recv_exactly(s, n):
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(min(65536, n - len(got)))
        if not chunk:
            break
        got.extend(chunk)
    return bytes(got)


def hold_open(ip, port, n, size, release):
    """All N connections are open at the same time between "open=" and the release."""
    socks = [None] * n
    echoed = [False] * n
    barrier = threading.Barrier(n + 1)

    def one(i):
        data = payload(size, seed=i)
        try:
            s = socket.create_connection((ip, port), timeout=60)
            s.sendall(data)
            echoed[i] = recv_exactly(s, size) == data
            socks[i] = s
        except OSError as e:
            log(f"connection {i}: {e}")
        barrier.wait()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    log(f"open={sum(echoed)} of {n}")
    for _ in range(600):
        if os.path.exists(release):
            break
        time.sleep(0.05)
    clean = 0
    for s in socks:
        if s is None:
            continue
        try:
            s.shutdown(socket.SHUT_WR)
            clean += s.recv(1) == b""
        except OSError:
            pass
        s.close()
    for t in threads:
        t.join()
    log(f"closed={clean} of {n}")


def stream_until_cut(ip, port):
    s = socket.create_connection((ip, port), timeout=60)
    chunk = payload(1 << 20)
    state = {"sent": 0, "recv": 0, "by": None}
    flowing = threading.Event()

    def writer():
        try:
            while state["by"] is None:
                s.sendall(chunk)
                state["sent"] += len(chunk)
        except OSError as e:
            state["write_error"] = e.errno

    threading.Thread(target=writer, daemon=True).start()
    try:
        while True:
            data = s.recv(65536)
            if not data:
                state["by"] = "eof"
                break
            state["recv"] += len(data)
            if state["recv"] >= len(chunk) and not flowing.is_set():
                flowing.set()
                log("flowing")
    except OSError as e:
        state["by"] = f"reset({e.errno})"
    # The kernel reports a reset once: when the writer's send took it, the
    # reader only sees the end of the stream.
    if state["by"] == "eof" and state.get("write_error") == errno.ECONNRESET:
        state["by"] = f"reset({errno.ECONNRESET})"
    s.close()
    log(f"ended by={state['by']} sent={state['sent']} recv={state['recv']}")


if __name__ == "__main__":
    main()
