"""A tiny HTTP/1.1 API on 127.0.0.1 for captures/har/mitmproxy.har (see record-mitmproxy.sh):
deliberate mistakes next to correct answers. Prints its port, serves until killed."""

import json
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "inventory/0.9"
    sys_version = "Python/3"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304) and not any(n.lower() == "content-length" for n, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/v2/items":
            data = zlib.compress(json.dumps([{"sku": "A-1", "qty": 4}]).encode())
            self.send(200, data, [("Content-Type", "application/json"), ("Content-Encoding", "deflate")])
        elif self.path == "/v2/items/9":
            self.send(200, b'{"sku":"A-9"}', [("Content-Type", "application/json"), ("Cache-Control", "private, public")])
        elif self.path == "/v2/old":
            self.send(302, b"", [("Content-Type", "text/plain")])  # no Location
        elif self.path == "/v2/maintenance":
            self.send(503, b'{"error":"maintenance"}', [("Content-Type", "application/json")])  # no Retry-After
        elif self.path == "/v2/blob":
            self.send(200, bytes(range(256)), [("Content-Type", "application/octet-stream")])
        elif self.path == "/v2/cookies":
            self.send(200, b"{}", [("Content-Type", "application/json"),
                                   ("Set-Cookie", "a=1; Path=/; Secure; HttpOnly; SameSite=Lax"),
                                   ("Set-Cookie", "__Host-b=2; Path=/")])
        else:
            self.send(404, b'{"error":"no route"}', [("Content-Type", "application/json")])

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        raw = self.body()
        if self.path == "/v2/items":
            try:
                json.loads(raw)
            except ValueError:
                return self.send(500, b'{"error":"internal"}', [("Content-Type", "application/json")])
            self.send(201, b'{"sku":"A-2"}', [("Content-Type", "application/json"), ("Location", "/v2/items/2")])
        elif self.path == "/v2/login":
            self.send(200, b'{"ok":true}', [("Content-Type", "application/json")])
        else:
            self.send(404, b'{"error":"no route"}', [("Content-Type", "application/json")])

    def do_OPTIONS(self):
        self.send(204, b"", [("Access-Control-Allow-Origin", "*"),
                              ("Access-Control-Allow-Credentials", "true"),
                              ("Access-Control-Allow-Methods", "GET, POST")])


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
