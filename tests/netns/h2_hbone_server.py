#!/usr/bin/python3
"""An independent HBONE server: python3-h2 over ssl (mTLS 1.3, ALPN h2), in place of a ztunnel.

  h2_hbone_server.py IP PORT CERT_DIR RECORD

Requires a client certificate from the CA in CERT_DIR/root-cert.pem and
presents CERT_DIR/cert-chain.pem. Each CONNECT is answered by the port of its
:authority: 8403 -> 403, 8503 -> 503, anything else -> 200 and an echo of the
stream's bytes (END_STREAM answered with END_STREAM). One JSON line per
request goes to RECORD: method, authority, the other header names and values,
and the client certificate's URI SANs. Prints "listening" once bound.
"""
import json
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events

STATUS_BY_PORT = {"8403": "403", "8503": "503"}


def serve(tls, record, lock):
    peer = tls.getpeercert()
    uris = [v for k, v in peer.get("subjectAltName", ()) if k == "URI"]
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, validate_inbound_headers=False))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    # python-h2 4.1 insists on :path, which a classic CONNECT omits (RFC 9113
    # §8.5): its inbound validation is off and the test checks the fields itself.
    pending = {}  # stream id -> bytes not yet echoed (waiting for window)
    ended = set()  # streams whose client side ended

    def flush(stream_id):
        data = pending.get(stream_id, b"")
        while data:
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                break
            conn.send_data(stream_id, data[:window])
            data = data[window:]
        pending[stream_id] = data
        if not data and stream_id in ended:
            conn.end_stream(stream_id)
            ended.discard(stream_id)
            pending.pop(stream_id, None)

    while True:
        try:
            data = tls.recv(65536)
        except (ssl.SSLError, OSError):
            return
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = {k.decode(): v.decode() for k, v in event.headers}
                with lock:
                    record.write(json.dumps({"method": headers.get(":method"),
                                             "authority": headers.get(":authority"),
                                             "headers": headers, "client_uris": uris}) + "\n")
                    record.flush()
                port = headers.get(":authority", "").rsplit(":", 1)[-1]
                status = STATUS_BY_PORT.get(port, "200")
                if headers.get(":method") != "CONNECT":
                    status = "400"
                conn.send_headers(event.stream_id, [(":status", status)],
                                  end_stream=status != "200")
                if status == "200":
                    pending[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id in pending:
                    pending[event.stream_id] += event.data
                    flush(event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if event.stream_id in pending:
                    ended.add(event.stream_id)
                    flush(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                for stream_id in list(pending):
                    flush(stream_id)
            elif isinstance(event, h2.events.StreamReset):
                pending.pop(event.stream_id, None)
                ended.discard(event.stream_id)
        tls.sendall(conn.data_to_send())


def main():
    ip, port, cert_dir, record_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(f"{cert_dir}/root-cert.pem")
    ctx.load_cert_chain(f"{cert_dir}/cert-chain.pem", f"{cert_dir}/key.pem")
    ctx.set_alpn_protocols(["h2"])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen(16)
    print("listening", flush=True)
    lock = threading.Lock()
    with open(record_path, "a") as record:
        while True:
            raw, _ = listener.accept()
            try:
                tls = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as e:
                print(f"handshake failed: {e}", flush=True)
                raw.close()
                continue
            if tls.selected_alpn_protocol() != "h2":
                print(f"ALPN {tls.selected_alpn_protocol()!r}, closing", flush=True)
                tls.close()
                continue
            threading.Thread(target=serve, args=(tls, record, lock), daemon=True).start()


if __name__ == "__main__":
    main()
