"""Build a tiny, randomly-initialised chat model of the real architecture, offline.

Tests and local demos need a model that loads and generates exactly like the
production one (``Qwen2ForCausalLM`` + ``Qwen2Tokenizer`` with a ChatML chat
template) but is small enough to build in well under a second on a CPU and
needs no download. The weights are random, so replies are random; the
generation config only lets the model emit whole English words, so a random
reply is still readable text. A testing tool: the tests and the benchmarks build it; no image has it.

    python -m tools.testing.tiny_model --output models/tiny-qwen2      # make tiny-model
    LLM_MODEL=models/tiny-qwen2 python -m llm serve
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
import sys
import time
from enum import Enum
from pathlib import Path

logger = logging.getLogger(__name__)

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END]
_WORD = re.compile(r"[A-Za-z]+")
_PUNCTUATION = {".", ",", "?", "!"}

# Qwen2.5's ChatML template, minus tool calling: a default system message
# when the conversation has none, then one block per message, then the
# assistant header when add_generation_prompt is set.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

VOCAB_SIZE = 1024
CONTEXT_LENGTH = 4096


class Architecture(str, Enum):
    QWEN2 = "qwen2"


_SENTENCES = """\
A good tent keeps you dry when the wind turns and the rain comes in sideways.
Pitch the tent on flat ground, away from dead branches and running water.
Our lightweight backpacking tent weighs under two kilograms with the poles.
A three season tent is enough for most trips between spring and autumn.
Winter camping needs a four season tent, a warm sleeping bag and an insulated mat.
Choose a sleeping bag by its comfort temperature, not by its extreme rating.
Down sleeping bags pack small and stay warm, but synthetic fill copes better with damp.
A sleeping mat with a higher R value keeps the cold ground away from your back.
Hiking boots should fit snugly at the heel and leave room for your toes on descents.
Break in new leather boots on short walks before a long trek.
Trail running shoes are light and dry quickly, but give less ankle support.
Waterproof jackets with a breathable membrane let sweat escape while keeping rain out.
Layer your clothing: a base layer, a warm fleece and a waterproof shell.
Merino wool base layers stay warm when wet and do not smell after days on the trail.
Pack the heavy items close to your back and in the middle of the backpack.
A sixty litre backpack suits trips of several days with a tent and a stove.
A daypack of twenty to thirty litres holds water, snacks, a map and a spare layer.
Adjust the hip belt first, then the shoulder straps, then the load lifters.
Trekking poles take weight off your knees on steep descents.
Always carry a map and a compass, and know how to use them.
A head torch with spare batteries is essential if the walk runs late.
Bring a first aid kit with blister plasters, bandages and pain relief.
Drink often and carry enough water for the whole route or a way to filter it.
A water filter removes bacteria and protozoa from streams and lakes.
Gas canister stoves are quick and clean, while liquid fuel stoves work better in deep cold.
Cook outside the tent to avoid carbon monoxide and fire.
Leave no trace: take your rubbish home and camp at least sixty metres from water.
Check the weather forecast before you leave and turn back if conditions worsen.
Tell someone your route and the time you expect to return.
Climbing harnesses, helmets and ropes must be retired after a serious fall.
Check your climbing rope for cuts and soft spots before every session.
Carabiners should be stored dry and away from chemicals.
In avalanche terrain carry a transceiver, a shovel and a probe, and take a course.
Gaiters keep snow, mud and stones out of your boots.
A warm hat and gloves matter even in summer on high mountains.
Sunglasses and sun cream protect you on snow and at altitude.
Insect repellent and a head net make summer evenings by the lake bearable.
Dry your tent at home before storing it to prevent mould.
Wash down jackets with a special soap and tumble dry them with clean tennis balls.
Reproof waterproof clothing when water stops beading on the fabric.
Store sleeping bags loose in a large cotton sack, not compressed.
Hello and welcome to the store, how can I help you today?
Thank you for your question, I am happy to help with your gear.
You can return unused items within thirty days for a full refund.
Orders ship within two working days and arrive in about a week.
Our support team answers emails on weekdays during office hours.
Every product comes with a two year warranty against manufacturing defects.
We accept cards, bank transfers and popular online payment services.
I can check the status of your order if you tell me the order number.
Is there anything else I can help you with before your next adventure?
"""

_SUBJECTS = [
    "the tent", "this backpack", "a sleeping bag", "the stove", "my boots",
    "the jacket", "our fleece", "a head torch", "the water filter", "the rope",
    "the map", "your compass", "the mat", "a trekking pole", "the gloves",
]
_VERBS = [
    "keeps", "protects", "needs", "suits", "weighs less than", "lasts longer than",
    "packs smaller than", "works better with", "fits inside", "goes well with",
]
_OBJECTS = [
    "a hiker in the rain", "the summer trail", "a cold night in the hills",
    "a long trek", "wet weather", "a family camping trip", "a winter climb",
    "a weekend in the forest", "the mountain hut", "a quick day hike",
]


def training_corpus() -> list[str]:
    """A few hundred lines of plain English about outdoor gear (no I/O)."""
    lines = [line for line in _SENTENCES.splitlines() if line.strip()]
    for subject, verb, obj in itertools.product(_SUBJECTS, _VERBS, _OBJECTS):
        lines.append(f"{subject} {verb} {obj}.")
    return lines


def build_tokenizer():
    """A byte-level BPE tokenizer with Qwen2's exact pipeline and ChatML special tokens.

    ``AutoTokenizer`` always loads a ``qwen2`` checkpoint as ``Qwen2Tokenizer``
    (byte-level BPE, Qwen's pre-tokenizer regex), so the tiny tokenizer is
    trained with that same pipeline and built as that class: tests exercise
    the production tokenizer code, only with a 1K instead of a 151K vocabulary.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix=""))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(training_corpus(), trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]

    tokenizer = Qwen2Tokenizer(
        vocab=trained["vocab"],
        merges=[tuple(merge) for merge in trained["merges"]],
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        extra_special_tokens=[IM_START, IM_END],
        model_max_length=CONTEXT_LENGTH,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def unreadable_token_ids(tokenizer) -> list[int]:
    """Ids of tokens that are not a whole corpus word or punctuation.

    The tiny model's generation config suppresses these, so its random replies
    are sequences of real words ("tent warm boots the rain.") rather than
    word fragments and stray bytes.
    """
    words = {word for line in training_corpus() for word in _WORD.findall(line)}
    special = set(tokenizer.all_special_ids)
    suppressed = []
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        readable = text in _PUNCTUATION or (text.startswith(" ") and text[1:] in words)
        if token_id not in special and not readable:
            suppressed.append(token_id)
    return suppressed


def build_model(tokenizer, seed: int = 0):
    """A randomly-initialised Qwen2ForCausalLM sized for the given tokenizer."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    end_of_text = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        tie_word_embeddings=True,
        bos_token_id=end_of_text,
        eos_token_id=im_end,
        pad_token_id=end_of_text,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    # Qwen2.5-Instruct's sampling defaults, so requests that leave them out
    # take the same path as with the real model.
    model.generation_config = GenerationConfig(
        bos_token_id=end_of_text,
        eos_token_id=[im_end, end_of_text],
        pad_token_id=end_of_text,
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.05,
        suppress_tokens=unreadable_token_ids(tokenizer),
    )
    return model


def build_tiny_model(
    output_dir: str | Path, seed: int = 0, arch: Architecture | str = Architecture.QWEN2
) -> Path:
    """Write a tiny random model + tokenizer to ``output_dir``; return the directory.

    ``AutoModelForCausalLM.from_pretrained(output_dir)`` and
    ``AutoTokenizer.from_pretrained(output_dir)`` load the result.
    """
    import transformers.models.qwen2.modeling_qwen2  # noqa: F401  (torch + transformers: most of a cold run)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    arch = Architecture(arch)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=seed)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "Wrote a tiny random %s model (%s parameters, vocabulary %d) to %s in %.2fs",
        arch.value, f"{n_params:,}", len(tokenizer), output, time.perf_counter() - started,
    )
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.testing.tiny_model",
                                     description="Write a tiny random Qwen2 chat model for tests and offline demos.")
    parser.add_argument("--output", required=True, help="Directory to write the model to.")
    parser.add_argument("--arch", default="qwen2", choices=[a.value for a in Architecture],
                        help="Architecture. Default: qwen2.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights. Default: 0.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    output = build_tiny_model(args.output, seed=args.seed, arch=args.arch)
    logger.info("Serve it with: LLM_MODEL=%s python -m llm serve", output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
