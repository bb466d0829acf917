"""The independent side of tests/jwe_interop.rs: Python's jwcrypto.

Reads one JSON request on stdin, writes one JSON answer on stdout.

  {"op": "keys"}
      two RSA-2048 keys, kid "py-1" and "py-2": {"public": <JWK of py-2>, "private": <JWK set>}
  {"op": "decrypt", "private": <JWK set>, "tokens": [compact, ...]}
      each token decrypted with the key its header names (JWKSet, by kid):
      [{"ok": true, "payload": str, "header": {...}} | {"ok": false, "error": str}, ...]
  {"op": "encrypt", "public": <JWK>, "values": [str, ...]}
      each value as a compact JWE, RSA-OAEP-256 + A256GCM, the JWK's kid in the header
"""
import json
import sys

from jwcrypto import jwe, jwk


def main():
    request = json.load(sys.stdin)
    op = request["op"]
    if op == "keys":
        keys = [jwk.JWK.generate(kty="RSA", size=2048, kid=kid) for kid in ("py-1", "py-2")]
        keyset = jwk.JWKSet()
        for k in keys:
            keyset.add(k)
        out = {
            "public": json.loads(keys[1].export_public()),
            "private": json.loads(keyset.export(private_keys=True)),
        }
    elif op == "decrypt":
        keyset = jwk.JWKSet.from_json(json.dumps(request["private"]))
        out = []
        for token in request["tokens"]:
            try:
                t = jwe.JWE()
                t.deserialize(token, key=keyset)
                out.append({"ok": True, "payload": t.payload.decode("utf-8"), "header": t.jose_header})
            except Exception as e:  # every failure is an answer: the test checks which
                out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    elif op == "encrypt":
        key = jwk.JWK.from_json(json.dumps(request["public"]))
        out = []
        for value in request["values"]:
            header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key.key_id}
            t = jwe.JWE(value.encode("utf-8"), protected=json.dumps(header))
            t.add_recipient(key)
            out.append(t.serialize(compact=True))
    else:
        raise SystemExit(f"unknown op {op}")
    json.dump(out, sys.stdout)


main()
