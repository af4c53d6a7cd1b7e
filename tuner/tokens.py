"""Trial tokens: what lets a trial push metrics for itself, and for no other trial.

Each trial gets ``TUNER_TRIAL_TOKEN = HMAC-SHA256(secret, "namespace/experiment/trial")`` (hex).
Nothing is stored per trial: the token is recomputed to check a push, so tokens survive
restarts as long as the secret does. The secret is ``Settings.secret`` when given (``tuner
serve`` reads ``TUNER_SECRET``), else 32 random bytes kept in ``<workdir>/server-secret``
(created with mode 0600 on first start). Several servers sharing one database must share the
secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from tuner.errors import InvalidRequest

SECRET_FILE = "server-secret"


def load_or_create_secret(path: Path) -> bytes:
    """The secret stored at ``path``; a new random one (mode 0600) when there is none."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as e:
        raise InvalidRequest(f"{path} does not hold a hex secret; remove it") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server created it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
    return secret


def derive_trial_token(secret: bytes, namespace: str, experiment: str, trial: str) -> str:
    """The token of one trial (hex HMAC-SHA256 of its full name)."""
    message = f"{namespace}/{experiment}/{trial}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes, so that non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode(), expected.encode())
