"""A conversation's next prompt starts with the tokens its last turn left in the cache, even where the
tokenizer would split the model's reply otherwise (``llm/engine/prompt_splice.py``)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from llm.engine.llamacpp_batch import Kept, common_prefix
from llm.engine.prompt_splice import splice

SYSTEM = "You are the support assistant of an outdoor-gear store. " * 4


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def render(tokenizer, *messages):
    return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages], tokenize=False,
                                         add_generation_prompt=True)


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False).input_ids


def decode(tokenizer, ids):
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def test_the_reply_as_the_model_split_it_is_reused(tokenizer):
    first = [("system", SYSTEM), ("user", "Which tent?")]
    prompt = ids_of(tokenizer, render(tokenizer, *first))
    # The model wrote "trace trace" as t|r|ace|Ġtr|ace; the tokenizer's own split is t|r|ace|Ġtrace.
    generated = [tokenizer.convert_tokens_to_ids(t) for t in ("t", "r", "ace", "Ġtr", "ace")]
    assert decode(tokenizer, generated) == "trace trace"
    assert ids_of(tokenizer, "trace trace") != generated
    kept = Kept(prompt + generated[:-1], len(prompt))  # the last token was sampled, never fed: no KV
    text = render(tokenizer, *first, ("assistant", "trace trace"), ("user", "And a sleeping bag?"))
    own = ids_of(tokenizer, text)

    spliced = splice(tokenizer, text, own, [kept])
    assert decode(tokenizer, spliced) == text  # the model reads the same text
    assert common_prefix(kept.tokens, spliced) == len(kept.tokens)  # the whole kept sequence is reused
    assert common_prefix(kept.tokens, own) == len(prompt) + 3  # the tokenizer's split parts at "Ġtr"


def test_another_conversation_keeps_its_own_tokens(tokenizer):
    first = [("system", SYSTEM), ("user", "Which tent?")]
    prompt = ids_of(tokenizer, render(tokenizer, *first))
    kept = Kept(prompt + ids_of(tokenizer, "trace"), len(prompt))
    text = render(tokenizer, ("system", SYSTEM), ("user", "Do you ship to Norway?"))
    own = ids_of(tokenizer, text)
    assert splice(tokenizer, text, own, [kept]) == own
    assert splice(tokenizer, text, own, []) == own


def test_whitespace_the_action_server_stripped_does_not_end_the_match(tokenizer):
    first = [("system", SYSTEM), ("user", "Which tent?")]
    prompt = ids_of(tokenizer, render(tokenizer, *first))
    generated = ids_of(tokenizer, " trace trace ")  # the model began (and ended) with a space
    kept = Kept(prompt + generated[:-1], len(prompt))
    text = render(tokenizer, *first, ("assistant", "trace trace"), ("user", "And a sleeping bag?"))
    spliced = splice(tokenizer, text, ids_of(tokenizer, text), [kept])
    assert common_prefix(kept.tokens, spliced) == len(kept.tokens)
    # what the model reads: its reply with its own spaces, then the rest of the prompt as sent
    assert decode(tokenizer, spliced) == text.replace("trace trace", decode(tokenizer, generated[:-1]), 1)


def test_common_prefix():
    assert [common_prefix(a, b) for a, b in [([], [1]), ([1, 2, 3], [1, 2, 4]), ([1, 2], [1, 2, 3]),
                                              ([5], [6]), ("abc", "abd"), ("ab", "ab")]] == [0, 2, 2, 0, 2, 2]


def test_matched_end():
    from llm.engine.prompt_splice import matched_end

    assert matched_end("abc", "abcdef") == 3
    assert matched_end("ab c", "abcdef") == 3
    assert matched_end("ab\n\nc ", "ab c  def") == 6
    assert matched_end("a x", "a y") is None
    assert matched_end("abc ", "abc   def") == 6  # a decoded end in whitespace takes the text's
    assert matched_end("", "abc") == 0
