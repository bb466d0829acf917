"""A witness on the far side of nginx: it receives a copy of every request nginx forwards
(nginx's `mirror`), as nginx forwarded it, and writes one JSON line per request saying what it
saw. Nothing in it comes from stet:

- with --cert, it checks the request's Cavage signature with the `cryptography` package
  (RSA PKCS#1 v1.5, SHA-256) and the QSealC certificate, rebuilding the signing string from the
  headers it received, and checks the Digest against the body;
- with --prism, it sends the request, bytes unchanged, to a Stoplight Prism mock serving an
  OpenAPI file, and records Prism's verdict: its status and the violations it found in the
  request (those it found in its own mock answer are not the request's).

It answers 204 to nginx, which drops the answer (the client gets the real bank's).

Usage: witness.py --out FILE --port-file FILE [--cert PEM] [--prism URL --prefix PATH]
"""

import argparse
import base64
import hashlib
import http.client
import http.server
import json
import re
import threading
import os
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')
# Headers of the hop from nginx to here, not of the request stet sent.
HOP = {"host", "connection", "x-witness-protocol", "content-length"}


def signature_check(method, target, headers, body, public_key):
    values = headers.get_all("Signature")
    if not values:
        return None
    params = dict(PARAM.findall(values[0]))
    names = params.get("headers", "date").split()
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
            continue
        got = headers.get_all(name)
        if not got:
            return {"ok": False, "headers": names, "error": f"signed header {name} is missing"}
        lines.append(f"{name}: {', '.join(v.strip() for v in got)}")
    signing_string = "\n".join(lines)
    result = {"ok": True, "headers": names, "key_id": params.get("keyId"), "error": None}
    try:
        public_key.verify(
            base64.b64decode(params.get("signature", "")),
            signing_string.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception as e:  # InvalidSignature, or a malformed value
        result.update(ok=False, error=f"signature does not verify ({type(e).__name__}) "
                      f"over:\n{signing_string}")
        return result
    digest = headers.get("Digest")
    if digest is not None:
        wanted = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if digest.strip() != wanted:
            result.update(ok=False, error=f"Digest {digest} is not {wanted}")
    return result


def prism_verdict(prism, prefix, method, target, headers, body):
    path = target[len(prefix):] if target.startswith(prefix) else target
    if not path.startswith("/"):
        path = "/" + path
    forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP}
    connection = http.client.HTTPConnection(prism.hostname, prism.port, timeout=60)
    connection.request(method, path, body=body or None, headers=forwarded)
    response = connection.getresponse()
    answer = response.read()
    violations = []
    try:
        violations.extend(json.loads(response.getheader("sl-violations") or "[]"))
    except ValueError:
        violations.append({"location": ["header"], "message": "unreadable sl-violations"})
    detail = None
    if response.status >= 400:
        try:
            problem = json.loads(answer)
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            detail = problem.get("detail") or problem.get("title")
            violations.extend(v for v in problem.get("validation") or [] if isinstance(v, dict))
        else:
            # An example answer of the spec's (some are JSON written as a string).
            detail = answer[:300].decode(errors="replace")
    # Violations Prism found in its own mock answer say nothing about the request.
    about_request = [v for v in violations if (v.get("location") or [""])[0] != "response"]
    return {"status": response.status, "path": path, "violations": about_request,
            "detail": detail}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--prism")
    parser.add_argument("--prefix", default="/")
    args = parser.parse_args()

    public_key = None
    if args.cert:
        with open(args.cert, "rb") as f:
            public_key = x509.load_pem_x509_certificate(f.read()).public_key()
    prism = urllib.parse.urlsplit(args.prism) if args.prism else None
    lock = threading.Lock()
    out = open(args.out, "a", encoding="utf-8")

    class Witness(http.server.BaseHTTPRequestHandler):
        def handle_one_request(self):
            try:
                super().handle_one_request()
            except Exception as e:  # a request that broke the witness still leaves a line
                self.record({"target": getattr(self, "path", None), "method":
                             getattr(self, "command", None), "error": f"{type(e).__name__}: {e}"})

        def record(self, line):
            with lock:
                out.write(json.dumps(line) + "\n")
                out.flush()

        def any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            line = {
                "method": self.command,
                "target": self.path,
                "protocol": self.headers.get("X-Witness-Protocol"),
                "host": self.headers.get("Host"),
                "request_id": self.headers.get("X-Request-ID"),
                "body": body.decode("utf-8", errors="replace"),
            }
            if public_key is not None:
                line["signature"] = signature_check(
                    self.command, self.path, self.headers, body, public_key)
            if prism is not None and self.path.startswith(args.prefix):
                line["prism"] = prism_verdict(
                    prism, args.prefix, self.command, self.path, self.headers, body)
            self.record(line)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = any

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
