"""A tiny identity provider for tests: real key pairs, a JWKS served over HTTP, signed JWTs.

The JWKS server runs on a thread of the test process, bound to port 0 (the port it got is
its own). It serves whatever ``keys`` holds at each request and counts the requests, so a
test can rotate keys or see how often Taskweb fetched them.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://sso.example.com/realms/ops"
AUDIENCE = "taskweb"


@dataclass(frozen=True)
class SigningKey:
    """A private key, its ``kid`` and algorithm; ``public_jwk`` is what the provider publishes."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str = "rsa-1") -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header})


def claims(subject: str, *roles: str, lifetime: float = 300, **extra: Any) -> dict[str, Any]:
    """What a provider puts in an access token for ``subject`` with ``roles``."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"id-{subject}",
        "preferred_username": subject,
        "roles": list(roles),
        "iat": now,
        "exp": int(now + lifetime),
        **extra,
    }


@dataclass
class JwksServer:
    """``GET /certs`` answers ``{"keys": [...]}`` with the public keys of ``keys``."""

    keys: list[SigningKey]
    body: bytes | None = None
    """When set, served instead of the key set (a broken provider)."""
    requests: int = 0
    _server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                keys = {"keys": [key.public_jwk for key in provider.keys]}
                body = provider.body or json.dumps(keys).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/certs"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
