"""Fixtures for the training pipeline: input files of every format, a Rasa tracker store, a tiny model.

Nothing is downloaded: the model is a tiny random Qwen2 with the real tokenizer
pipeline and ChatML template (``tools.testing.tiny_model``), built once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.testing.tiny_model import build_tiny_model

SHORT_SYSTEM_PROMPT = "You are Sherpa, the support assistant of Ridgeline Outfitters."

# (question, answer) pairs in the tiny tokenizer's vocabulary (outdoor gear), so sequences stay short.
QA = [
    ("Which tent keeps me dry in the rain?", "A good tent keeps you dry when the wind turns and the rain comes in."),
    ("How do I pitch the tent?", "Pitch the tent on flat ground, away from dead branches and running water."),
    ("What sleeping bag for winter?", "Winter camping needs a warm sleeping bag and an insulated mat."),
    ("Down or synthetic?", "Down sleeping bags pack small and stay warm, but synthetic fill copes better with damp."),
    ("How should boots fit?", "Hiking boots should fit snugly at the heel and leave room for your toes."),
    ("Do I need trekking poles?", "Trekking poles take weight off your knees on steep descents."),
    ("How do I pack my backpack?", "Pack the heavy items close to your back and in the middle of the backpack."),
    ("What should I bring on a day hike?", "A daypack holds water, snacks, a map and a spare layer."),
    ("Which stove is best in the cold?", "Liquid fuel stoves work better in deep cold than gas canister stoves."),
    ("Can I cook in my tent?", "Cook outside the tent to avoid carbon monoxide and fire."),
    ("How do I store my tent?", "Dry your tent at home before storing it to prevent mould."),
    ("What layers should I wear?", "Layer your clothing: a base layer, a warm fleece and a waterproof shell."),
]


def chat(question: str, answer: str, *follow_up: str) -> dict:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    for index, text in enumerate(follow_up):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": text})
    return {"messages": messages}


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny model's tensors are too small to split: a second thread only waits on a busy 2-core runner."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), seed=0)


@pytest.fixture(scope="session")
def system_prompt_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prompt") / "system.txt"
    path.write_text(SHORT_SYSTEM_PROMPT + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory, system_prompt_file: Path) -> Path:
    """A prepared dataset of 12 short conversations (two with a second turn): 9 train, 3 validation."""
    from training import prepare

    root = tmp_path_factory.mktemp("dataset")
    records = [chat(q, a) for q, a in QA]
    records[0] = chat(*QA[0], "And in strong wind?", "Pitch the tent with its back to the wind.")
    records[5] = chat(*QA[5], "Are they heavy?", "Trekking poles are light and fit inside the backpack.")
    source = write_jsonl(root / "chats.jsonl", records)
    output = root / "prepared"
    code = prepare.main(["--input", str(source), "--output", str(output), "--val-fraction", "0.25",
                         "--system-prompt-file", str(system_prompt_file)])
    assert code == 0
    return output
