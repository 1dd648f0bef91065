"""The envelope codec and the channel: round trips, garbage frames, deadlines."""

from __future__ import annotations

import time

import msgspec
import pytest
import zmq
from worker_fixtures import no_leaked_workers

from conveyor_sgl.runtime.workers.channel import Channel, ChannelError
from conveyor_sgl.runtime.workers.messages import (
    AbortDecoding,
    Cancel,
    Envelope,
    Error,
    Feed,
    Finish,
    Kind,
    Limits,
    MessageError,
    Ready,
    Result,
    Shutdown,
    Start,
    UnitDone,
    decode,
    describe_error,
    encode,
)

pytestmark = pytest.mark.timeout(20)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)

PAYLOADS = [
    (Start(target="tools_for_tests:EchoTool", config={"a": [1, 2.5, "x", None]}), Kind.START),
    (Start(target="m:C", limits=Limits(cpu_s=1.5, memory_bytes=1 << 30)), Kind.START),
    (
        Feed(index=3, text="x = 1\n", start=10, end=16, data={"key": "k", "value": {"n": 1}}),
        Kind.FEED,
    ),
    (Finish(), Kind.FINISH),
    (Cancel(reason="program abandoned"), Kind.CANCEL),
    (Shutdown(), Kind.SHUTDOWN),
    (Ready(pid=1234), Kind.READY),
    (UnitDone(index=0, started_at=12.5, finished_at=12.75), Kind.UNIT_DONE),
    (AbortDecoding(reason="invalid argument"), Kind.ABORT),
    (Result(status="error", output="partial\n", error="ValueError: bad"), Kind.RESULT),
    (Error(message="protocol error"), Kind.ERROR),
]


@pytest.mark.parametrize(("payload", "kind"), PAYLOADS)
def test_every_kind_round_trips(payload, kind):
    envelope = Envelope(session="s1", payload=payload, seq=7)
    decoded = decode(encode(envelope))
    assert decoded == envelope
    assert decoded.kind is kind


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"garbage",
        b"\xc1\xff\x00",
        msgspec.msgpack.encode({"session": "s"}),
        msgspec.msgpack.encode({"session": "s", "payload": {"kind": "nope"}, "seq": 1}),
    ],
)
def test_garbage_decodes_to_a_clear_error(frame):
    with pytest.raises(MessageError, match="not a conveyor message"):
        decode(frame)


def test_payload_values_are_checked_on_decode():
    frame = msgspec.msgpack.encode(
        {"session": "s", "payload": {"kind": "result", "status": "fine"}, "seq": 1}
    )
    with pytest.raises(MessageError, match="status"):
        decode(frame)


def test_unencodable_config_is_a_clear_error():
    with pytest.raises(MessageError, match="cannot encode start message"):
        encode(Envelope(session="s", payload=Start(target="m:C", config={"f": object()})))


def test_exceptions_travel_as_text():
    assert describe_error(ValueError("bad unit")) == "ValueError: bad unit"
    assert describe_error(KeyboardInterrupt()) == "KeyboardInterrupt"


@pytest.fixture
def endpoint(tmp_path):
    return f"ipc://{tmp_path}/ch"


def test_channel_round_trip_and_sequence_numbers(endpoint):
    server, client = Channel(endpoint, bind=True), Channel(endpoint, bind=False)
    try:
        client.send(Envelope(session="", payload=Ready(pid=1)))
        client.send(Envelope(session="s", payload=Finish()))
        first, second = server.recv(2.0), server.recv(2.0)
        assert (first.kind, second.kind) == (Kind.READY, Kind.FINISH)
        assert (first.seq, second.seq) == (1, 2)
        server.send(Envelope(session="s", payload=Cancel()))
        assert client.recv(2.0).payload == Cancel()
    finally:
        server.close()
        client.close()


def test_garbage_frames_do_not_break_the_receiver(endpoint):
    server = Channel(endpoint, bind=True)
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoint)
    try:
        raw.send(b"\x00not msgpack")
        raw.send_multipart([b"two", b"frames"])
        raw.send(encode(Envelope(session="s", payload=Finish())))
        bad1, bad2, good = server.recv(2.0), server.recv(2.0), server.recv(2.0)
        assert bad1.kind is Kind.ERROR and "not a conveyor message" in bad1.payload.message
        assert bad2.kind is Kind.ERROR and "2 frames" in bad2.payload.message
        assert good.kind is Kind.FINISH
    finally:
        raw.close()
        server.close()


@pytest.mark.timing
def test_recv_returns_none_at_its_deadline(endpoint):
    server = Channel(endpoint, bind=True)
    try:
        t = time.monotonic()
        assert server.recv(0.2) is None
        assert 0.15 <= time.monotonic() - t < 1.0
        assert server.recv(0.0) is None
    finally:
        server.close()


@pytest.mark.timing
def test_send_without_a_peer_fails_at_its_deadline(endpoint):
    server = Channel(endpoint, bind=True)  # a bound DEALER with no peer cannot send
    try:
        t = time.monotonic()
        with pytest.raises(ChannelError, match="took no message"):
            server.send(Envelope(session="s", payload=Finish()), timeout_s=0.2)
        assert time.monotonic() - t < 1.0
    finally:
        server.close()
