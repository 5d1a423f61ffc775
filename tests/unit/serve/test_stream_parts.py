"""Pure parts of `mloop stream`: URIs, event decoding, derived request ids, answers and dead letters."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ConfigDict, Field, create_model

from mloop.errors import StreamError
from mloop.serve.model_holder import Scored
from mloop.serve.stream.brokers.base import Event
from mloop.serve.stream.events import answers, dead_letter, decode, request_id_of
from mloop.serve.stream.uris import parse_stream_uri

Record = create_model(  # shaped like build_request_model's: positional names, the column as the alias
    "Record",
    __config__=ConfigDict(extra="forbid"),
    f0=(float, Field(alias="area")),
    f1=(str | None, Field(None, alias="kind")),
)


def test_redis_uri() -> None:
    target = parse_stream_uri("redis://10.0.0.5:6380/2?stream=events&maxlen=1000")
    assert (target.kind, target.host, target.port, target.db, target.name) == ("redis", "10.0.0.5", 6380, 2, "events")
    assert target.options == {"maxlen": "1000"}
    assert target.label == "redis://10.0.0.5:6380/2/events"
    assert target.sibling("-dead").name == "events-dead"


def test_nats_uri_and_its_dead_letter_stream() -> None:
    target = parse_stream_uri("nats://127.0.0.1?stream=EVENTS&subject=houses.in")
    assert (target.port, target.name, target.subject) == (4222, "EVENTS", "houses.in")
    dead = target.sibling("-dead")
    assert (dead.name, dead.subject) == ("EVENTS-dead", "houses.in.dead")
    assert parse_stream_uri("nats://h:1?stream=S").subject == "S"


def test_a_password_is_kept_but_never_shown() -> None:
    target = parse_stream_uri("redis://:s3cret@127.0.0.1:6379/0?stream=e")
    assert target.password == "s3cret"  # noqa: S105 - a made-up one
    assert "s3cret" not in repr(target) and "s3cret" not in target.label
    with pytest.raises(StreamError) as caught:
        parse_stream_uri("redis://:s3cret@127.0.0.1:6379/0?stream=e&colour=red")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("amqp://h?stream=x", "unknown scheme 'amqp'"),
        ("redis://?stream=x", "no host"),
        ("redis://h:6379/0", "no stream"),
        ("redis://h/zero?stream=x", "not a number"),
        ("redis://h?stream=x&colour=red", "unknown parameter(s) colour"),
        ("redis://h?stream=x&maxlen=lots", "maxlen must be a whole number"),
        ("nats://h?stream=a.b", "characters nats does not allow"),
        ("nats://h/x?stream=a", "no path"),
        ("kafka://h:9092", "no topic"),
        ("nats://h?stream=S&ack_wait=-1", "ack_wait must be a positive number"),
        ("redis://h:99999?stream=x", "not a valid URI"),
    ],
)
def test_bad_uris_say_what_is_wrong(uri: str, says: str) -> None:
    with pytest.raises(StreamError) as caught:
        parse_stream_uri(uri, "--source")
    assert says in str(caught.value) and "--source" in str(caught.value)


def test_decode_keeps_good_events_and_says_why_bad_ones_are_bad() -> None:
    events = [
        Event("1-0", orjson.dumps({"area": 80.5, "kind": "flat", "request_id": "mine"})),
        Event("2-0", orjson.dumps({"area": 60})),
        Event("3-0", b"{oops"),
        Event("4-0", orjson.dumps({"area": "big"})),
        Event("5-0", orjson.dumps({"kind": "flat"})),
        Event("6-0", orjson.dumps({"area": 1, "colour": "red"})),
        Event("7-0", orjson.dumps([1, 2])),
        Event("8-0", orjson.dumps({"area": 1, "request_id": 7})),
        Event("9-0", b"", problem="the entry has no field 'data'"),
    ]
    decoded = decode(events, Record, "redis://h:1/0/e")
    assert decoded.ids == ["mine", request_id_of("redis://h:1/0/e", events[1])]
    assert decoded.records == [{"area": 80.5, "kind": "flat"}, {"area": 60.0, "kind": None}]
    reasons = {event.key: reason for event, reason in decoded.dead}
    assert reasons["3-0"].startswith("not JSON")
    assert "field 'area'" in reasons["4-0"] and "number" in reasons["4-0"]
    assert "field 'area'" in reasons["5-0"] and "required" in reasons["5-0"].lower()
    assert "field 'colour'" in reasons["6-0"]
    assert "got list" in reasons["7-0"]
    assert "request_id" in reasons["8-0"]
    assert reasons["9-0"] == "the entry has no field 'data'"


def test_a_redelivered_event_gets_the_same_id_and_another_event_another() -> None:
    one, same, other = Event("5-0", b"{}"), Event("5-0", b"{}"), Event("5-1", b"{}")
    assert request_id_of("s", one) == request_id_of("s", same) != request_id_of("s", other)
    assert request_id_of("s", one) != request_id_of("t", one)
    assert request_id_of("s", one) == "9b1d079c-a752-5154-b65e-7fd7f71fe727"  # fixed across releases


def test_answers_and_dead_letters() -> None:
    outputs = answers(["a", "b"], "3", Scored(["yes", "no"], [{"yes": 0.9, "no": 0.1}, {"yes": 0.2, "no": 0.8}]))
    assert [o.id for o in outputs] == ["a", "b"]
    assert orjson.loads(outputs[1].data) == {
        "request_id": "b",
        "model_version": "3",
        "prediction": "no",
        "probabilities": {"yes": 0.2, "no": 0.8},
    }
    assert "probabilities" not in orjson.loads(answers(["a"], "1", Scored([1.5], None))[0].data)
    letter = dead_letter("s", Event("9-0", b"\xff\xfe"), "not JSON")
    body = orjson.loads(letter.data)
    assert body == {"reason": "not JSON", "source": "s", "event_id": "9-0", "data": "fffe"}
    assert letter.id == dead_letter("s", Event("9-0", b"other"), "x").id  # idempotent by the event, not its data
