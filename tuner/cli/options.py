"""What every command shares: exit codes, environment variables, the API token option."""

from __future__ import annotations

import os
from pathlib import Path

from tuner import names
from tuner.errors import InvalidRequest

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
TOKEN_ENV = names.ENV_API_TOKEN
SERVER_ENV = names.ENV_SERVER
SECRET_ENV = names.ENV_SECRET
API_URL_ENV = names.ENV_API_URL


def read_token(token_file: str | None) -> str | None:
    """The API token: the content of ``token_file``, else ``$TUNER_API_TOKEN``."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as e:
            raise InvalidRequest(f"cannot read the token file {token_file}: {e.strerror}") from e
        if not token:
            raise InvalidRequest(f"the token file {token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None
