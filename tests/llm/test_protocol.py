"""Request validation and response bodies of the chat-completions API."""

from __future__ import annotations

import pytest

from llm.errors import InvalidRequest
from llm.protocol import (
    ChatMessage,
    Completion,
    FinishReason,
    chat_completion_body,
    chunk_body,
    parse_chat_request,
    parse_json_body,
    sse,
)

USER = [{"role": "user", "content": "Which tent for winter?"}]


def parse(body, cap=512, default=256):
    return parse_chat_request(body, max_tokens_cap=cap, default_max_tokens=default)


def test_valid_request_is_parsed_with_defaults():
    request = parse({"messages": [{"role": "system", "content": "Be brief."}, *USER], "model": "anything"})
    assert request.messages == (ChatMessage("system", "Be brief."), ChatMessage("user", "Which tent for winter?"))
    assert request.max_tokens == 256
    assert (request.temperature, request.top_p, request.seed, request.stop) == (None, None, None, ())
    assert request.request_id.startswith("chatcmpl-")


def test_sampling_fields_are_kept():
    request = parse(
        {"messages": USER, "max_tokens": 12, "temperature": 0, "top_p": 0.5, "seed": 7, "stop": "\n", "n": 1,
         "stream": False, "frequency_penalty": 0.0}
    )
    assert (request.max_tokens, request.temperature, request.top_p, request.seed) == (12, 0.0, 0.5, 7)
    assert request.stop == ("\n",)


def test_streaming_fields_are_kept():
    request = parse({"messages": USER, "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True})
    assert (request.stream, request.include_usage, request.ignore_eos) == (True, True, True)
    plain = parse({"messages": USER})
    assert (plain.stream, plain.include_usage, plain.ignore_eos) == (False, False, False)


def test_stream_chunks_have_the_openai_shape():
    request = parse({"messages": USER, "stream": True, "stream_options": {"include_usage": True}})
    first = chunk_body(request, "tiny", 5, delta={"role": "assistant", "content": ""})
    assert first == {
        "id": request.request_id, "object": "chat.completion.chunk", "created": 5, "model": "tiny",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                     "logprobs": None}],
        "usage": None,
    }
    last = chunk_body(request, "tiny", 5, finish_reason=FinishReason.STOP)
    assert last["choices"][0]["delta"] == {} and last["choices"][0]["finish_reason"] == "stop"
    usage = chunk_body(request, "tiny", 5, usage=(11, 4))
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    assert sse({"a": "é"}) == 'data: {"a":"é"}\n\n'
    assert sse("[DONE]") == "data: [DONE]\n\n"


def test_max_completion_tokens_is_an_alias_for_max_tokens():
    assert parse({"messages": USER, "max_completion_tokens": 9}).max_tokens == 9


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ([1, 2], None, "must be a JSON object"),
        ({}, "messages", "'messages' is missing"),
        ({"messages": []}, "messages", "must be a non-empty list"),
        ({"messages": "hi"}, "messages", "must be a non-empty list"),
        ({"messages": ["hi"]}, "messages[0]", "'messages[0]' must be an object"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "must be one of system, user, assistant, got 'tool'"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "got None"),
        ({"messages": [*USER, {"role": "user", "content": 5}]}, "messages[1].content", "'messages[1].content' must be a string, got int"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "messages[0].content", "must be a string, got list"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens", "'max_tokens' must be a positive integer, got 0"),
        ({"messages": USER, "max_tokens": "10"}, "max_tokens", "must be a positive integer, got '10'"),
        ({"messages": USER, "max_tokens": 2.5}, "max_tokens", "must be a positive integer"),
        ({"messages": USER, "max_tokens": True}, "max_tokens", "must be a positive integer"),
        ({"messages": USER, "max_tokens": 513}, "max_tokens", "'max_tokens' is 513, above this server's cap of 512"),
        ({"messages": USER, "temperature": 2.5}, "temperature", "'temperature' must be a number between 0 and 2"),
        ({"messages": USER, "temperature": -0.1}, "temperature", "between 0 and 2"),
        ({"messages": USER, "temperature": "hot"}, "temperature", "between 0 and 2"),
        ({"messages": USER, "top_p": 0}, "top_p", "'top_p' must be a number greater than 0 and at most 1"),
        ({"messages": USER, "top_p": 1.5}, "top_p", "greater than 0 and at most 1"),
        ({"messages": USER, "seed": "7"}, "seed", "'seed' must be an integer"),
        ({"messages": USER, "stop": ""}, "stop", "'stop' must be a non-empty string or a list"),
        ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"messages": USER, "stop": [1]}, "stop", "'stop' must be"),
        ({"messages": USER, "n": 2}, "n", "'n' must be 1"),
        ({"messages": USER, "stream": "yes"}, "stream", "'stream' must be true or false, got 'yes'"),
        ({"messages": USER, "stream_options": {"include_usage": True}}, "stream_options", "only allowed with stream=true"),
        ({"messages": USER, "stream": True, "stream_options": [1]}, "stream_options", "must be an object"),
        ({"messages": USER, "stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage",
         "'stream_options.include_usage' must be true or false"),
        ({"messages": USER, "ignore_eos": "no"}, "ignore_eos", "'ignore_eos' must be true or false"),
        ({"messages": [{"role": "user", "content": "hi \ud800"}]}, "messages[0].content",
         "'messages[0].content' holds a lone surrogate (\\ud800)"),
        ({"messages": USER, "stop": ["ok", "\udfff"]}, "stop", "'stop' holds a lone surrogate"),
    ],
)
def test_bad_bodies_are_rejected_with_a_sentence_naming_the_field(body, param, fragment):
    with pytest.raises(InvalidRequest) as error:
        parse(body)
    assert fragment in error.value.message
    assert error.value.param == param
    assert error.value.status == 400


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "body is empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"max_tokens": ' + b"9" * 5000 + b"}", "not valid JSON"),  # more digits than Python reads
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unparseable_bodies_are_invalid_requests(raw, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        parse_json_body(raw)


def test_response_body_has_the_openai_shape():
    request = parse({"messages": USER})
    completion = Completion("A warm tent.", prompt_tokens=11, completion_tokens=4, finish_reason=FinishReason.LENGTH)
    body = chat_completion_body(request, completion, "tiny", created=123)
    assert body["id"] == request.request_id
    assert (body["object"], body["created"], body["model"]) == ("chat.completion", 123, "tiny")
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "A warm tent."}, "finish_reason": "length",
         "logprobs": None}
    ]
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
