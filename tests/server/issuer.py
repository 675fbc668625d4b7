"""A minimal OIDC discovery + JWKS server over real HTTP, for verification tests.

It only publishes keys (the tests sign tokens themselves); it can rotate keys and count fetches.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class KeyPair:
    def __init__(self, kid: str, alg: str = "ES256") -> None:
        self.kid, self.alg = kid, alg
        if alg.startswith("ES"):
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk.update({"kid": kid, "alg": alg, "use": "sig"})


class Issuer:
    def __init__(self, audience: str = "hoop-cli") -> None:
        self.audience = audience
        self.keys = [KeyPair("k1")]
        self.jwks_fetches = 0
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.discovery_issuer: str | None = None
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.discovery_issuer or issuer.url,
                            "jwks_uri": issuer.url + "/jwks",
                            "device_authorization_endpoint": issuer.url + "/device",
                            "token_endpoint": issuer.url + "/token"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [k.jwk for k in issuer.keys]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def rotate(self, alg: str = "ES256") -> KeyPair:
        key = KeyPair(f"k{len(self.keys) + 1}", alg)
        self.keys.insert(0, key)
        return key

    def token(self, sub: str = "alice", key: KeyPair | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        payload = {"iss": self.url, "aud": self.audience, "sub": sub, "iat": now, "exp": now + 600,
                   "email": f"{sub}@example.com"}
        payload.update(claims)
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
