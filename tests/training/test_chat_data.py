"""The assistant mask: exactly the replies (and their end-of-turn token) are learned, for any chat template."""

from __future__ import annotations

import pytest

from training.chat_data import TemplateError, assistant_spans, tokenize_conversation
from training.modeling import load_tokenizer

CONVERSATION = [
    {"role": "system", "content": "You sell tents."},
    {"role": "user", "content": "Which tent keeps me dry?"},
    {"role": "assistant", "content": "A good tent keeps you dry."},
    {"role": "user", "content": "And warm?"},
    {"role": "assistant", "content": "Winter camping needs a warm sleeping bag."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def masked_text(tokenizer, example) -> list[str]:
    """The decoded runs of consecutive masked tokens."""
    runs, current = [], []
    for token, bit in zip(example["input_ids"], example["assistant_masks"]):
        if bit:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


def test_mask_covers_each_reply_and_its_end_of_turn_token_only(tokenizer):
    (example,) = tokenize_conversation(tokenizer, CONVERSATION)
    assert masked_text(tokenizer, example) == [
        "A good tent keeps you dry.<|im_end|>",
        "Winter camping needs a warm sleeping bag.<|im_end|>",
    ]
    # The ids are the chat template's, token for token, as the LLM service renders them.
    rendered = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert example["input_ids"] == tokenizer(rendered, add_special_tokens=False).input_ids
    assert len(example["assistant_masks"]) == len(example["input_ids"])


def test_templates_that_rewrite_earlier_turns_give_one_example_per_reply(tokenizer):
    # Like Qwen3: earlier replies render differently (here: shortened) once a later turn follows.
    template = (
        "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' and not loop.last %}"
        "{{- '<|im_start|>assistant\\n(earlier reply)<|im_end|>\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = template
    assert len(assistant_spans(tokenizer, CONVERSATION)) == 2
    first, second = tokenize_conversation(tokenizer, CONVERSATION)
    assert masked_text(tokenizer, first) == ["A good tent keeps you dry.<|im_end|>"]
    assert masked_text(tokenizer, second) == ["Winter camping needs a warm sleeping bag.<|im_end|>"]
    assert "(earlier reply)" in tokenizer.decode(second["input_ids"])


def test_a_template_whose_reply_does_not_follow_the_generation_prompt_is_refused(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = (
        "{%- for message in messages %}{{- message['role'] + ': ' + message['content'] + '\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- 'ASSISTANT >>> ' }}{%- endif %}"
    )
    with pytest.raises(TemplateError, match="reply's tokens cannot be found"):
        tokenize_conversation(tokenizer, CONVERSATION)
