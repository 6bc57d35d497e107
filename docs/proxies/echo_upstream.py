"""A stand-in for your application: answers every request with what it received.

Run it behind the proxy to see what your application would see: the X-Keyturn-* identity
headers, and no Authorization or X-Api-Key header. Usage: python3 echo_upstream.py [PORT]
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def _echo(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
            },
            indent=2,
        ).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"echo upstream on http://127.0.0.1:{port}")
    ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
