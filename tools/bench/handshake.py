#!/usr/bin/python3
"""Full mTLS handshakes against one TLS server, as fast as the client allows (stdlib only).

    handshake.py HOST PORT SECONDS PROCS h2|echo CAFILE CERTDIR...

Each of PROCS processes loops for SECONDS: connect, TLS 1.3 handshake
presenting the next client identity (CERTDIR/cert-chain.pem + key.pem, round
robin, so that nothing keyed by the peer's identity can be reused), then
proves the server finished its side before closing:
  h2    send the HTTP/2 client preface and read the server's first frame
        (ztunnel's HBONE port: ALPN h2, no CONNECT, so no upstream connection)
  echo  send one byte and read its echo (stunnel's server port: stunnel
        connects its upstream, the rr echo server, for every connection)
No session is ever resumed: every handshake is a full one (a new SSLContext
per identity, and no session passed to wrap_socket).

Prints one JSON object: handshakes completed, errors, elapsed seconds.
The server's CPU per handshake is measured by the caller from /proc.
"""
import json
import multiprocessing
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def context(cafile, certdir, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    # The client does not check the server's chain: only the server's cost is measured.
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(f"{certdir}/cert-chain.pem", f"{certdir}/key.pem")
    if alpn:
        ctx.set_alpn_protocols(["h2"])
    return ctx


def worker(args, start, out):
    host, port, seconds, mode, cafile, dirs = args
    ctxs = [context(cafile, d, mode == "h2") for d in dirs]
    done = errors = 0
    i = start
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx = ctxs[i % len(ctxs)]
        i += 1
        try:
            with socket.create_connection((host, port), timeout=5) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with ctx.wrap_socket(raw) as s:
                    s.sendall(PREFACE if mode == "h2" else b"x")
                    if not s.recv(64):
                        raise OSError("closed before replying")
            done += 1
        except (OSError, ssl.SSLError):
            errors += 1
            if errors > 1000:
                break
    out.put((done, errors))


def main():
    host, port, seconds, procs, mode, cafile = sys.argv[1:7]
    dirs = sys.argv[7:]
    args = (host, int(port), float(seconds), mode, cafile, dirs)
    out = multiprocessing.Queue()
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=worker, args=(args, k * 7, out)) for k in range(int(procs))]
    for p in ps:
        p.start()
    results = [out.get() for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.monotonic() - t0
    print(json.dumps({"handshakes": sum(r[0] for r in results), "errors": sum(r[1] for r in results),
                      "seconds": round(elapsed, 3)}))


if __name__ == "__main__":
    main()
