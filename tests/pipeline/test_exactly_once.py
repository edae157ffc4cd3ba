"""Exactly-once mode (issue 13): processing.guarantee "exactly_once" makes the output producer
transactional, one transaction per commit epoch with the consumed offsets and their restore
points. A read_committed reader of the outputs (consume_all: confluent-kafka's default isolation
level) must see each window, aggregate and alert exactly once, checked against the model computed
here from the input rows (correctness.py / reference.py), never against another run's output.

ctest: pipeline.exactly_once runs the tests that hold on the embedded broker; the SIGKILL test is
pipeline.exactly_once_sigkill, DISABLED: librdkafka 2.0.2's mock cluster (iotstream-broker) takes
the transactional protocol but not its semantics (EndTxn writes no commit/abort markers, Fetch
answers LastStableOffset = high watermark with no aborted transactions, TxnOffsetCommit drops the
offsets), so a killed member's open transaction stays visible to read_committed readers and its
outputs appear twice once the next member redoes the epoch (see docs/pipeline.md#exactly-once)."""
import json
import threading

import pytest

import iotstream
from conftest import PLUGIN_DIR, HostProcess, consume_all, readings, run_host, windows_of
from correctness import (CLOSER_PREFIX, T0, assert_aggregates_and_alerts, assert_windows, fast_config, host_args,
                         model, produce_closers, produce_rows, wait_windows, with_hot_readings)

HOUR_MS = 3_600_000
WINDOW_S, GRACE_S = 10, 2


def rows_between(start_s, end_s, sensors=12, seed=3):
    """Readings every 500 ms of [T0 + start_s, T0 + end_s), about 5% of them hot (one alert each)."""
    return with_hot_readings(readings(sensors=sensors, start_ms=T0 + start_s * 1000, end_ms=T0 + end_s * 1000,
                                      step_ms=500), share=0.05, seed=seed + start_s)


def eos_host(broker, group, config):
    return HostProcess(*host_args(broker.bootstrap, group, config, window_s=WINDOW_S, grace_s=GRACE_S),
                       "--guarantee", "exactly_once")


def produce_paced(broker, rows, hosts, chunks=6):
    """Produces rows in chunks, each once the members have consumed the ones before it: the
    members keep producing outputs (and committing transactions) across several epochs."""
    size = (len(rows) + chunks - 1) // chunks
    sent = 0
    for i in range(0, len(rows), size):
        produce_rows(broker.bootstrap, rows[i:i + size])
        sent += len(rows[i:i + size])
        wait_until_consumed(hosts, sent)


def wait_until_consumed(hosts, n, timeout=60):
    import time
    deadline = time.time() + timeout
    while sum(h.consumed for h in hosts) < n:
        for h in hosts:
            if h.proc.poll() is not None:
                raise AssertionError("host exited early:\n" + h.output())
        assert time.time() < deadline, f"members consumed {[h.consumed for h in hosts]} < {n}"
        time.sleep(0.2)


def sensor_windows_now(broker):
    return [w for w in windows_of(consume_all(broker.bootstrap, "iot-windows"))
            if not w["sensor_id"].startswith(CLOSER_PREFIX)]


def assert_exactly_once(broker, rows, mock_limit_hit=False):
    """Each result once and equal to the model. mock_limit_hit: a member aborted a transaction
    or lost its partitions, which on the embedded broker shows results twice (see
    MOCK_LIMIT_LINES); then each copy must still be identical and complete (at least once)."""
    expected = model(rows, WINDOW_S, GRACE_S)
    wait_windows(broker.bootstrap, expected)
    assert_windows(sensor_windows_now(broker), expected, repeats_allowed=mock_limit_hit)
    assert_aggregates_and_alerts(broker.bootstrap, rows, exact=not mock_limit_hit)


# What a member logs when librdkafka 2.0.2's mock cluster cannot show exactly-once. The mock drops
# TxnOffsetCommit, so a transaction's offsets live only in the consumer's commit made after it;
# during a rebalance that commit can be refused (REBALANCE_IN_PROGRESS, or ILLEGAL_GENERATION once
# the generation has moved on, when librdkafka also declares the partitions lost and the open
# transaction is aborted). The next owner then restores from an older commit and redoes work
# whose outputs are committed, and an aborted transaction stays visible (no markers). A real
# broker stores the offsets atomically with the transaction and hides aborted records. A refusal
# between transactions is harmless: the next transaction's commit, or the one on revoke, covers
# every partition still assigned; one while draining (on revoke, at the end) is not.
MOCK_LIMIT_LINES = ("exactly-once: aborting the transaction",
                    "committing the offsets outside the transaction failed while draining")


def mock_limits_hit(*hosts):
    return [line.strip() for h in hosts for line in h.err_lines if any(s in line for s in MOCK_LIMIT_LINES)]


def transactions_committed(host):
    return any("transactional producer" in line for line in host.err_lines)


# ---- the default and the switch --------------------------------------------------------------

def test_at_least_once_is_the_default_and_the_guarantee_is_checked(broker):
    doc = {"kafka": {"bootstrap.servers": broker.bootstrap}, "plugins": {"dir": str(PLUGIN_DIR)}}
    with iotstream.Pipeline(doc) as p:
        stats = p.stats()
        assert stats["guarantee"] == "at_least_once"
        assert "transactions" not in stats
    with iotstream.Pipeline(doc, guarantee="exactly_once") as p:
        assert p.stats()["guarantee"] == "exactly_once"
        assert p.stats()["transactions"] == {"committed": 0, "aborted": 0}
    with pytest.raises(iotstream.ConfigError, match="guarantee"):
        iotstream.Pipeline(dict(doc, processing={"guarantee": "twice"}))
    with pytest.raises(iotstream.ConfigError, match="transactional.id"):
        iotstream.Pipeline(dict(doc, producer={"kafka": {"transactional.id": "mine"}}))
    assert "--guarantee" in run_host("--help").stdout


# ---- exactly once on the embedded broker -----------------------------------------------------

def test_exactly_once_graceful_restart_matches_the_model(broker, tmp_path):
    """A member stopped (resumable) mid-window, then the next member: every window, aggregate
    and alert once, each epoch committed as a transaction."""
    config = fast_config(tmp_path)
    part_a, part_b = rows_between(0, 25), rows_between(25, 50)
    first = eos_host(broker, "eos-graceful", config)
    produce_paced(broker, part_a, [first], chunks=3)
    assert first.stop() == 0, first.output()
    assert transactions_committed(first), first.output()

    produce_rows(broker.bootstrap, part_b)
    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    second = eos_host(broker, "eos-graceful", config)
    assert_exactly_once(broker, part_a + part_b)
    assert second.stop() == 0, second.output()


def test_exactly_once_when_a_second_member_joins(broker, tmp_path):
    """A second member joins mid-run (a cooperative rebalance): the first commits its open
    transaction on revoke, the new owner restores from that commit; each result once."""
    config = fast_config(tmp_path)
    part_a, part_b = rows_between(0, 25, seed=5), rows_between(25, 50, seed=5)
    first = eos_host(broker, "eos-join", config)
    produce_paced(broker, part_a, [first], chunks=3)
    second = eos_host(broker, "eos-join", config)
    second.wait_log(lambda line: "assigned" in line and "partition" in line, timeout=60)
    produce_paced(broker, part_b, [first, second], chunks=3)
    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    # A slow rejoin (a loaded machine: the mock waits session.timeout.ms - 1 s for the first
    # member to rejoin) ends its generation under it: its partitions are lost and its open
    # transaction aborted, which only a real broker hides (1 run in ~8 in CI), or
    # its commit of a transaction's offsets is refused during the rebalance (MOCK_LIMIT_LINES).
    limits = mock_limits_hit(first, second)
    if limits:
        print("the embedded broker's transaction limits were hit; checking at-least-once with identical copies:",
              *limits, sep="\n  ")
    try:
        assert_exactly_once(broker, part_a + part_b, mock_limit_hit=bool(limits))
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- first member:\n{first.output()}\n--- second member:\n{second.output()}") from None
    assert first.stop() == 0, first.output()
    assert second.stop() == 0, second.output()


def test_exactly_once_across_a_sigkill(broker, tmp_path):
    """SIGKILL while outputs flow, then a restart: the killed member's open transaction never
    becomes visible; the next member redoes it from the last committed transaction.
    DISABLED in ctest (pipeline.exactly_once_sigkill): the mock cluster shows aborted and open
    transactions to read_committed readers (module docstring)."""
    config = fast_config(tmp_path)
    part_a, part_b = rows_between(0, 25, seed=9), rows_between(25, 50, seed=9)
    first = eos_host(broker, "eos-kill", config)
    produce_paced(broker, part_a, [first], chunks=4)
    first.kill()  # mid-run: the epoch after the last commit is an open transaction

    produce_rows(broker.bootstrap, part_b)
    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    second = eos_host(broker, "eos-kill", config)
    assert_exactly_once(broker, part_a + part_b)
    assert second.stop() == 0, second.output()
