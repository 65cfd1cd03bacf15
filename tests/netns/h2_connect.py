#!/usr/bin/python3
"""An independent HBONE client: python3-h2 over ssl (mTLS 1.3, ALPN h2).

  h2_connect.py IP PORT AUTHORITY CERT_DIR [STATUS]

Sends CONNECT AUTHORITY with the certificate in CERT_DIR (cert-chain.pem,
key.pem, root-cert.pem). With STATUS 200 (the default) it expects 200, sends
a line through the tunnel and expects it echoed back; with another STATUS it
expects that rejection. Exit 0 on success.
"""
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events


def main():
    ip, port, authority, cert_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    expect = (sys.argv[5] if len(sys.argv) > 5 else "200").encode()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # SPIFFE certificates carry a URI SAN, no DNS name
    ctx.load_verify_locations(f"{cert_dir}/root-cert.pem")
    ctx.load_cert_chain(f"{cert_dir}/cert-chain.pem", f"{cert_dir}/key.pem")
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection((ip, port), timeout=10))
    assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()

    # python-h2 insists on :path, which a classic CONNECT must omit (RFC 9113
    # §8.5): turn its outbound header validation off.
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, validate_inbound_headers=True))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, [(":method", "CONNECT"), (":authority", authority)])
    sock.sendall(conn.data_to_send())

    status = None
    echoed = b""
    message = b"hello through HBONE\n"
    while True:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status")
                print(f"status {status.decode()}")
                if status != b"200":
                    return 0 if status == expect else 1
                conn.send_data(stream_id, message)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                echoed += event.data
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                print(f"stream ended: {event.__class__.__name__}")
                return 1
        sock.sendall(conn.data_to_send())
        if echoed == message:
            print("echoed:", echoed.decode().strip())
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
