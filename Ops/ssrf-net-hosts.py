"""Test hosts for Ops/ssrf-net, each run inside its own network namespace.

  sink ADDR... --log FILE --clip FILE     HTTP on port 80 of each address; logs every accepted
                                          connection and answers with the clip (so a
                                          connection that should not happen also succeeds).
  media ADDR --log FILE --dir DIR         the public media host: files from DIR, plus
                                          /redirect?to=URL (302 to URL).
  dns ADDR --log FILE --public IP --private IP
                                          a DNS server on ADDR:53/udp with fixed names and
                                          rebind.test (public on its first A query, private after).

Every server exits when its stdin closes (the script that started it is gone) and
handles one request per connection; nothing loops without bound.
"""

import http.server
import socket
import socketserver
import struct
import sys
import threading
import os
import urllib.parse


def log_line(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def watch_stdin():
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()


def option(name):
    return sys.argv[sys.argv.index(name) + 1]


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            # "::" here means the IPv6 addresses only; IPv4 ones get their own listener.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    def verify_request(self, request, client_address):
        log_line(self.log, "connect %s %s" % (self.server_address[0], client_address[0]))
        return True


def serve(addresses, handler, log):
    servers = []
    for address in addresses:
        server = Server((address, 80), handler)
        server.log = log
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def sink(addresses):
    clip = open(option("--clip"), "rb").read()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            log_line(self.server.log, "request %s %s %s" % (self.server.server_address[0], self.headers.get("Host"), self.path))
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(clip)))
            self.end_headers()
            self.wfile.write(clip)

        def log_message(self, *args):
            pass

    serve(addresses, Handler, option("--log"))


def media(address):
    directory = option("--dir")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def do_GET(self):
            log_line(self.server.log, "request %s %s %s" % (self.server.server_address[0], self.headers.get("Host"), self.path))
            parsed = urllib.parse.urlparse(self.path)
            if parsed.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", urllib.parse.parse_qs(parsed.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    serve([address], Handler, option("--log"))


def dns(address):
    log = option("--log")
    public, private = option("--public"), option("--private")
    fixed = {
        "media.test": [public],
        "meta.test": ["169.254.169.254"],
        "private.test": [private],
        "loop.test": ["127.0.0.1"],
        # A public and a private address: every address must pass, not just the first.
        "mixed.test": [public, private],
    }
    fixed6 = {"mapped.test": "::ffff:" + private, "ula.test": "fd77::10"}
    rebind_queries = [0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    print("ready", flush=True)
    while True:
        data, peer = sock.recvfrom(512)
        if len(data) < 12:
            continue
        ident, flags, qdcount = struct.unpack(">HHH", data[:6])
        offset, labels = 12, []
        while offset < len(data) and data[offset] != 0 and len(labels) < 64:
            length = data[offset]
            labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        question_end = offset + 5
        if question_end > len(data):
            continue
        qtype = struct.unpack(">H", data[offset + 1 : offset + 3])[0]
        name = ".".join(labels).lower()
        answers = []
        if qtype == 1:  # A
            if name == "rebind.test":
                rebind_queries[0] += 1
                answers = [public if rebind_queries[0] == 1 else private]
            else:
                answers = fixed.get(name, [])
            records = [socket.inet_pton(socket.AF_INET, a) for a in answers]
        elif qtype == 28:  # AAAA
            answers = [fixed6[name]] if name in fixed6 else []
            records = [socket.inet_pton(socket.AF_INET6, a) for a in answers]
        else:
            records = []
        known = name in fixed or name in fixed6 or name == "rebind.test"
        log_line(log, "query %s %s -> %s" % (name, {1: "A", 28: "AAAA"}.get(qtype, qtype), ",".join(answers) or "-"))
        rcode = 0 if known else 3  # NXDOMAIN for unknown names
        header = struct.pack(">HHHHHH", ident, 0x8180 | rcode, 1, len(records), 0, 0)
        body = data[12:question_end]
        for record in records:
            # Name pointer to the question, type, class IN, TTL 0 (nothing may cache it).
            body += struct.pack(">HHHIH", 0xC00C, qtype, 1, 0, len(record)) + record
        sock.sendto(header + body, peer)


if __name__ == "__main__":
    watch_stdin()
    mode = sys.argv[1]
    addresses = []
    for index, arg in enumerate(sys.argv[2:]):
        if arg.startswith("--"):
            break
        addresses.append(arg)
    {"sink": lambda: sink(addresses), "media": lambda: media(addresses[0]), "dns": lambda: dns(addresses[0])}[mode]()
