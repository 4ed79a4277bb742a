"""The download Job's script (helm/ridgeline/files/download-weights.py), with a fake hub."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.deploy.conftest import CHART

_spec = importlib.util.spec_from_file_location("download_weights", CHART / "files" / "download-weights.py")
download_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(download_weights)


class FakeHub:
    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def __call__(self, repo_id, revision, local_dir, token):
        self.calls.append((repo_id, revision, token))
        (download := Path(local_dir)).mkdir(parents=True, exist_ok=True)
        (download / "config.json").write_text("{}")
        (download / ".cache").mkdir(exist_ok=True)
        if self.fail:
            raise ConnectionError("hub unreachable")
        (download / "model.safetensors").write_bytes(b"\0" * 1024)


def test_downloads_once_and_marks_the_version_complete(tmp_path):
    hub = FakeHub()
    model_dir = tmp_path / "Qwen" / "Qwen2.5-1.5B-Instruct" / "v2"
    assert download_weights.download("Qwen/Qwen2.5-1.5B-Instruct", "v2", model_dir, "tok", snapshot_download=hub)
    assert (model_dir / ".complete").read_text() == "Qwen/Qwen2.5-1.5B-Instruct@v2\n"
    assert sorted(p.name for p in model_dir.iterdir()) == [".complete", "config.json", "model.safetensors"]
    assert not model_dir.with_name("v2.partial").exists()
    assert hub.calls == [("Qwen/Qwen2.5-1.5B-Instruct", "v2", "tok")]
    # a second run (a retried Job, a re-synced Application) does nothing
    assert not download_weights.download("Qwen/Qwen2.5-1.5B-Instruct", "v2", model_dir, None, snapshot_download=hub)
    assert len(hub.calls) == 1


def test_a_failed_download_leaves_no_complete_version(tmp_path):
    model_dir = tmp_path / "m" / "main"
    with pytest.raises(ConnectionError):
        download_weights.download("m", "main", model_dir, None, snapshot_download=FakeHub(fail=True))
    assert not model_dir.exists(), "the LLM pods must keep waiting"
    assert (model_dir.with_name("main.partial") / "config.json").exists(), "a retry resumes the partial copy"
    download_weights.download("m", "main", model_dir, None, snapshot_download=FakeHub())
    assert (model_dir / ".complete").exists()


def test_main_says_which_variable_is_missing(monkeypatch, capsys):
    monkeypatch.delenv("MODEL_REPOSITORY", raising=False)
    assert download_weights.main() == 2
    assert "MODEL_REPOSITORY" in capsys.readouterr().err
