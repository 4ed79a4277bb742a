"""ridgeline_rasa.install: what is installed into Rasa at start-up, and the old names that still work.

Both in Rasa's own virtualenv, where the package is installed (scripts/setup.sh), as Rasa runs it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV") or ROOT / ".venv-rasa") / "bin" / "python"

INSTALL_SCRIPT = r"""
import asyncio, logging, warnings
from types import SimpleNamespace
from sanic import Blueprint
from rasa.core.actions.action import RemoteAction
from rasa.utils.tensorflow.models import RasaModel
from ridgeline.privacy import MaskPersonalData
from ridgeline_rasa import api_guard, install

handler = logging.StreamHandler()
logging.getLogger().addHandler(handler)  # a handler Rasa sets up after the channels are imported
middleware = []
app = SimpleNamespace(ctx=SimpleNamespace(), register_middleware=lambda f, kind: middleware.append((f, kind)))

def installed():
    return {"api guard": middleware == [(api_guard.guard, "request")],
            "action response check": hasattr(RemoteAction, "_ridgeline_original_validate_action_result"),
            "tf predict": hasattr(RasaModel, "_ridgeline_original_rasa_predict"),
            "log masking": any(isinstance(f, MaskPersonalData) for f in handler.filters)}

print("before:", sorted(k for k, v in installed().items() if v))
install.install(app)
install.install(app)
print("after twice:", sorted(k for k, v in installed().items() if v), len(middleware))

blueprint = Blueprint("test_channel")
install.on_server_start(blueprint)
other_app = SimpleNamespace(ctx=SimpleNamespace(), register_middleware=lambda f, kind: middleware.append((f, kind)))
[listener] = [f for f in blueprint._future_listeners if f.event == "before_server_start"]
asyncio.run(listener.listener(other_app, None))
print("listener installs:", other_app.ctx.ridgeline_api_guard, len(middleware))
"""

OLD_NAMES_SCRIPT = r"""
import warnings
from rasa.shared.utils.common import class_from_module_path
import connectors

for old, new in connectors.NEW_NAMES.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = __import__(old, fromlist=["_"])
    new_module = __import__(new, fromlist=["_"])
    named = [str(w.message) for w in caught if w.category is DeprecationWarning and new in str(w.message)]
    print(old, "same module:", module is new_module, "warned:", len(named) == 1)
print("credentials name:", class_from_module_path("connectors.slack.SlackInput").__module__)
"""


def _run_in_rasa(script: str, cwd: Path) -> list[str]:
    if not RASA_PYTHON.exists():
        pytest.fail(f"{RASA_PYTHON} is missing: run `make setup` (make test does)")
    result = subprocess.run([str(RASA_PYTHON), "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout.splitlines()


def test_install_puts_each_piece_in_place_once():
    lines = _run_in_rasa(INSTALL_SCRIPT, ROOT)
    assert "before: []" in lines
    assert "after twice: ['action response check', 'api guard', 'log masking', 'tf predict'] 1" in lines
    assert "listener installs: True 2" in lines  # a second server's app gets its own guard


def test_the_old_dotted_paths_still_work_with_a_warning_naming_the_new_one():
    """credentials.yml, endpoints.yml or config.yml of an operator may still say connectors.* or components.*:
    Rasa imports them from its working directory (rasa_project/, /app in the image)."""
    lines = _run_in_rasa(OLD_NAMES_SCRIPT, ROOT / "rasa_project")
    import_lines = [line for line in lines if " same module: " in line]
    assert len(import_lines) == 11
    assert all(line.endswith("same module: True warned: True") for line in import_lines), import_lines
    assert "credentials name: ridgeline_rasa.channels.slack" in lines
