"""Misbehaving servers for the probe failure tests, in a process of their own.

Run as a script with a certificate and key file: it listens on one
loopback port per behaviour, prints ``{"behaviour": port, ...}`` as one JSON
line, and serves until its stdin closes. Each behaviour is a script of steps.
"""

from __future__ import annotations

import json
import socketserver
import ssl
import sys
import threading

TLS = "tls"  # a step: start TLS as the server

# behaviour -> steps; a step is bytes to send, None to read one line (a request
# or command), or TLS.
BEHAVIOURS: dict[str, list[bytes | None | str]] = {
    "silent": [],
    "http_stall": [None, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nthe first part"],
    "http_garbage": [None, b"this is not HTTP at all\r\n\r\n"],
    "smtp_refuse": [b"554 5.3.2 no service here\r\n"],
    "smtp_busy": [b"421 4.3.2 too busy, try later\r\n"],
    "smtp_not_smtp": [b"SSH-2.0-OpenSSH_9.2\r\n"],
    "smtp_stall_ehlo": [b"220 fake.test ESMTP\r\n"],
    "smtp_ehlo_550": [b"220-fake.test ESMTP\r\n220 second banner line\r\n", None, b"550 5.7.1 not you\r\n"],
    "smtp_hangup": [b"220 fake.test ESMTP\r\n", None, b"250-fake.test\r\n"],
    # OpenSMTPD 6.8 on OpenSSL 3 fails every TLS handshake, so STARTTLS is tried here.
    "smtp_starttls": [b"220 fake.test ESMTP\r\n", None, b"250-fake.test\r\n250 STARTTLS\r\n",
                      None, b"220 2.0.0 ready\r\n", TLS, None, b"250 fake.test\r\n", None, b"221 bye\r\n"],
}


# These close the connection after their last step; the others then wait for the client to.
HANG_UP = ("smtp_busy", "smtp_hangup", "smtp_starttls")


def handler(steps: list[bytes | None | str], hang_up: bool,
            tls: ssl.SSLContext) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                for step in steps:
                    if step is None:
                        self.rfile.readline()
                    elif step == TLS:
                        self.request = tls.wrap_socket(self.request, server_side=True)
                        self.setup()  # new files over the TLS socket
                    else:
                        self.wfile.write(step)
                if not hang_up:
                    while self.rfile.read(4096):  # then stall until the client gives up
                        pass
            except (ConnectionError, ssl.SSLError):
                pass  # a probe that times out resets the connection; one that verifies refuses

    return Handler


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(cert: str, key: str) -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    ports = {}
    for name, steps in BEHAVIOURS.items():
        server = Server(("127.0.0.1", 0), handler(steps, name in HANG_UP, tls))
        ports[name] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)


if __name__ == "__main__":
    main(*sys.argv[1:])
