"""Trial tokens, the server secret they derive from, and the default API token.

Trial tokens
    Each trial gets ``TUNER_TRIAL_TOKEN = HMAC-SHA256(secret, "<experiment uid>/<trial>")``
    (hex). The uid is the experiment's unique id (random, given when it is stored), not its
    name: the token of a deleted experiment's trial is worthless for a new experiment of the
    same name. Nothing is stored per trial: the token is recomputed to check a push, so tokens
    survive restarts as long as the secret does.

The secret
    ``Settings.secret`` when given (``tuner serve`` reads ``TUNER_SECRET``; several servers
    sharing one database must share it), else 32 random bytes kept in :func:`state_dir`'s
    ``server-secret`` (mode 0600, created on first start). It is kept out of the workdir on
    purpose: trials run in it and are told its path, so a file there is one ``open()`` away from
    any trial, which could then forge the token of every other trial.

The default API token
    ``tuner serve`` without a token of its own uses (or creates) :func:`state_dir`'s
    ``api-token`` (mode 0600), which the command line and :class:`tuner.client.Client` read when
    they talk to a server on a loopback address, as Jupyter does with its token.

Both files are readable by every process of the same user: the boundary that holds against a
hostile trial is a separate uid (or a Kubernetes Pod), not a file mode.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from tuner.errors import InvalidRequest

SECRET_FILE = "server-secret"
API_TOKEN_FILE = "api-token"
STATE_ENV = "XDG_STATE_HOME"


def state_dir() -> Path:
    """This user's state directory of tuner: ``$XDG_STATE_HOME/tuner`` (default
    ``~/.local/state/tuner``)."""
    base = os.environ.get(STATE_ENV) or str(Path.home() / ".local" / "state")
    return Path(base) / "tuner"


def default_secret_path() -> Path:
    return state_dir() / SECRET_FILE


def default_api_token_path() -> Path:
    return state_dir() / API_TOKEN_FILE


def _create_private(path: Path, text: str) -> bool:
    """Write ``text`` to a new file of mode 0600 (its directory 0700 when created here);
    ``False`` when the file exists already (another process created it first)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return True


def load_or_create_secret(path: Path) -> bytes:
    """The secret stored at ``path``; a new random one (mode 0600) when there is none."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as e:
        raise InvalidRequest(f"{path} does not hold a hex secret; remove it") from e
    secret = secrets.token_bytes(32)
    if not _create_private(path, secret.hex()):
        return bytes.fromhex(path.read_text().strip())
    return secret


def load_or_create_api_token(path: Path) -> tuple[str, bool]:
    """The API token stored at ``path``, or a new random one (mode 0600); and whether it is
    new."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, False
    if path.exists():
        raise InvalidRequest(f"the token file {path} is empty; remove it")
    token = secrets.token_urlsafe(32)
    if not _create_private(path, token):
        return path.read_text().strip(), False
    return token, True


def read_default_api_token() -> str | None:
    """The default API token, when this user has one (:func:`load_or_create_api_token`)."""
    try:
        return default_api_token_path().read_text().strip() or None
    except OSError:
        return None


def derive_trial_token(secret: bytes, experiment_uid: str, trial: str) -> str:
    """The token of one trial (hex HMAC-SHA256 of its experiment's uid and its name)."""
    message = f"{experiment_uid}/{trial}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison (bytes, so that non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode(), expected.encode())
