"""The unmodified Katib SDK (``kubeflow-katib`` 0.19 from PyPI), run in its own venv.

The SDK's models serialize correctly only with ``kubernetes`` 31, and it needs ``protobuf`` < 5,
so it cannot share tuner's venv. ``make katib-sdk`` (a prerequisite of ``make test`` and
``make test-k8s``) builds ``.venv-katib-sdk``; tests run SDK code there as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDK_VENV = Path(os.environ.get("TUNER_KATIB_SDK_VENV", ROOT / ".venv-katib-sdk"))


def sdk_python() -> Path:
    """The SDK venv's interpreter; skips the calling test, saying how to build it, when absent."""
    python = SDK_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"the Katib SDK venv is not built ({SDK_VENV}); run `make katib-sdk`")
    return python


def run_sdk(
    script: str, *, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with the SDK's interpreter; a non-zero exit fails the test, with output."""
    done = subprocess.run(
        [str(sdk_python()), "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"SDK script failed ({done.returncode}):\n{output}"
    return done
