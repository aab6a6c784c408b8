"""Command language, back-off, stream message decoding, client errors."""

from __future__ import annotations

import pytest

from console.client import ConnectionLost, Dev3000Client
from console.commands import CommandError
from console.connection import Backoff, ConnectionInfo, ConnectionState
from console.registry import SCREENS
from console.stream import decode_message
from tools.harness import free_port


def test_command_aliases_and_arguments() -> None:
    parse_command = SCREENS.commands.parse
    assert parse_command(":logs").name == "logs"
    cmd = parse_command(":circuits api")
    assert (cmd.name, cmd.arg) == ("circuits", "api")
    assert parse_command("cb openai").name == "circuits"
    assert parse_command(":tl").name == "timeline"
    assert parse_command(":q").name == "quit"
    assert parse_command(":time").name == "timeline"  # unique prefix
    with pytest.raises(CommandError, match="unknown command"):
        parse_command(":frobnicate")


def test_backoff_grows_exponentially_to_a_cap_and_resets() -> None:
    backoff = Backoff(0.5, 2.0, 4.0, jitter=False)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    jittered = Backoff(1.0, 2.0, 8.0)
    delays = [jittered.next_delay() for _ in range(4)]
    assert all(lo / 2 <= d <= lo for d, lo in zip(delays, [1, 2, 4, 8], strict=True))


def test_connection_info_tracks_staleness() -> None:
    info = ConnectionInfo.ok()
    assert not info.stale
    failed = info.failed("refused", 1.5).failed("refused", 3.0)
    assert failed.state is ConnectionState.RECONNECTING
    assert failed.attempt == 2
    assert failed.stale
    assert failed.stale_since is not None
    assert failed.retry_in == 3.0


def test_stream_messages() -> None:
    event = decode_message(
        '{"type": "event", "event": {"id": "9", "kind": "chaos", "source": "tools",'
        ' "subject": "db", "summary": "fault on", "severity": "warning"}}'
    )
    assert event is not None
    assert event.id == "9"
    assert event.kind == "chaos"
    gap = decode_message('{"type": "gap", "reason": "slow_consumer", "missed": 12}')
    assert gap is not None
    assert gap.kind == "gap"
    assert "12" in gap.summary
    assert decode_message('{"type": "heartbeat", "ts": "x"}') is None
    assert decode_message("not json") is None


@pytest.mark.anyio
async def test_client_maps_refused_connection_to_connection_lost() -> None:
    async with Dev3000Client(f"http://127.0.0.1:{free_port()}", timeout=1) as client:
        with pytest.raises(ConnectionLost):
            await client.circuits()
