"""How Rasa is launched: its environment and its command lines, defined once.

Every Rasa process of the project starts from here:

- ``make run`` (stack/services.py): ``ENV`` and ``server_args(...)`` for ``rasa run``;
- ``make rasa-model`` (scripts/rasa_model.sh) and ``make shell``: ``python -m ridgeline_rasa.launch
  train|shell`` in Rasa's virtualenv, which runs its ``rasa`` with ``ENV`` and ``train_args()`` /
  ``shell_args()``;
- the designers' commands (scripts/designer.py): ``ENV`` for ``rasa data validate``, ``rasa test``;
- the image (docker/rasa.Dockerfile) stays a static file: tests/deploy/test_images.py keeps its
  ``ENV``, its training ``RUN`` and its ``CMD`` equal to ``ENV``, ``train_args(IMAGE_TRAIN_OUT)``
  and ``image_command()``.

``READS`` is what a Rasa process is given of its launcher's environment: the extension's
variables (``ridgeline_rasa.settings``), the ``${VARS}`` of endpoints.yml, the variables of Rasa,
Sanic and TensorFlow the project uses, and the process basics (``ridgeline.settings``);
``environment`` applies it, so no other service's settings reach Rasa.

Standard library and the ground floor only, and no Rasa: the main virtualenv (Python 3.11+)
imports it too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping, Optional, Sequence

from ridgeline.settings import Allowlist
from ridgeline_rasa import settings

# The environment of every Rasa process (server, training, shell, tests of the project):
ENV = {
    "RASA_TELEMETRY_ENABLED": "false",  # Rasa would otherwise ask about, and send, usage telemetry
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up chatter off
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",  # Rasa 3.6 uses SQLAlchemy 1.4's pre-2.0 API
    # Bodies over 2 MiB get 413 before Rasa reads them (Sanic's default is 100 MB); the API guard's
    # JSON limits (ridgeline_rasa/api_guard.py) are sized for it.
    "SANIC_REQUEST_MAX_SIZE": str(2 * 1024 * 1024),
}

# What a Rasa process reads of its environment (besides the process basics): the extension's
# settings; endpoints.yml's ${ACTION_SERVER_TOKEN}, ${DB_*} (tracker store) and ${REDIS_*} (lock
# store); Rasa's own (RASA_*, LOG_LEVEL*, the SQL tracker store's POSTGRESQL_* and SQL_*, the
# lock store's TICKET_LOCK_LIFETIME...), Sanic's (SANIC_*), TensorFlow's (TF_*), SQLAlchemy's and
# Matplotlib's (the designers' reports).
READS = Allowlist(
    names=(*settings.VARIABLES, *ENV, "ACTION_SERVER_TOKEN", "MAX_NUMBER_OF_PREDICTIONS", "TICKET_LOCK_LIFETIME",
           "COMPRESS_ACTION_SERVER_REQUEST", "FORCE_JSON_LOGGING"),
    prefixes=("RASA_", "DB_", "REDIS_", "LOG_LEVEL", "POSTGRESQL_", "SQL_", "SANIC_", "TF_", "SQLALCHEMY_", "MPL"),
)

MODEL_NAME = "assistant"  # models/assistant.tar.gz
# Where the image keeps what `rasa run` reads (docker/rasa.Dockerfile), and its port.
IMAGE_MODEL = f"/app/models/{MODEL_NAME}.tar.gz"
IMAGE_ENDPOINTS = "/app/endpoints.yml"
IMAGE_CREDENTIALS = "/app/credentials.yml"
IMAGE_PORT = 5005
IMAGE_TRAIN_OUT = "/models"  # the image's training stage writes the model here


def server_args(model: str | Path, endpoints: str | Path, credentials: str | Path, port: int, *,
                interface: Optional[str] = None, api_token: Optional[str] = None,
                jwt_secret: Optional[str] = None, cors: Optional[str] = None) -> list[str]:
    """``rasa``'s arguments for the server: the model, its endpoints and channels, where it listens.

    With ``api_token`` Rasa's HTTP API is on, for callers with that token (``?token=``) or, with
    ``jwt_secret``, a JWT signed with it; the channel webhooks and ``/`` stay open either way.
    """
    args = ["run", "--model", str(model), "--endpoints", str(endpoints), "--credentials", str(credentials)]
    if interface:
        args += ["--interface", interface]
    args += ["--port", str(port)]
    if api_token:
        args += ["--enable-api", f"--auth-token={api_token}"]  # one argument: a token may begin with "-"
        if jwt_secret:
            args += [f"--jwt-secret={jwt_secret}"]
    if cors:
        args += ["--cors", cors]
    return args


def train_args(out: str | Path = "models") -> list[str]:
    """``rasa``'s arguments to train the model (run in the Rasa project folder)."""
    return ["train", "--domain", "domain", "--fixed-model-name", MODEL_NAME, "--out", str(out), "--quiet"]


def shell_args(model: str | Path) -> list[str]:
    """``rasa``'s arguments to talk to ``model`` in the terminal (run in the Rasa project folder)."""
    return ["shell", "--model", str(model)]


def image_command() -> list[str]:
    """The image's ``CMD`` (its ``ENTRYPOINT`` is ``rasa``)."""
    return server_args(IMAGE_MODEL, IMAGE_ENDPOINTS, IMAGE_CREDENTIALS, IMAGE_PORT)


def environment(base: Mapping[str, str]) -> dict[str, str]:
    """What Rasa is given of ``base`` (a process's environment, ``READS``), with ``ENV`` over it."""
    return {**READS.select(base), **ENV}


def rasa_executable(python: Optional[str | Path] = None) -> Path:
    """The ``rasa`` command of the virtualenv whose Python is ``python`` (default: this one)."""
    return Path(python or sys.executable).with_name("rasa")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m ridgeline_rasa.launch train|shell``: this virtualenv's Rasa, as defined above."""
    parser = argparse.ArgumentParser(prog="python -m ridgeline_rasa.launch", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the model (in the Rasa project folder)")
    train.add_argument("--out", default="models", help="folder for %s.tar.gz (default: models)" % MODEL_NAME)
    shell = commands.add_parser("shell", help="talk to a trained model in the terminal")
    shell.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    rasa_args = train_args(args.out) if args.command == "train" else shell_args(args.model)
    rasa = rasa_executable()
    if not rasa.exists():
        parser.exit(2, f"{rasa} is missing: run this with the Python of Rasa's virtualenv "
                       "(.venv-rasa/bin/python; `make setup` creates it).\n")
    os.execve(rasa, [str(rasa), *rasa_args], environment(os.environ))


if __name__ == "__main__":
    main()
