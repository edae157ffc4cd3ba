"""Kill the pipeline mid-window and restart it: the final window results are complete, none
missing, none with a partial count (issue 5, at-least-once)."""
from collections import defaultdict

import time

from conftest import (HostProcess, check_windows_complete, consume_all, fast_group_config, produce, readings,
                      to_records, wait_committed, windows_of)
from reference import tumbling_windows

T0 = 1_767_225_600_000


def by_partition_of(rows):
    # One sensor's readings share a partition; per-sensor order is all the model needs here
    # because the data is in time order (no late records).
    grouped = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    return grouped


def test_killed_host_restarts_from_its_commit_and_completes_windows(broker, tmp_path):
    part_a = readings(sensors=40, start_ms=T0, end_ms=T0 + 25_000, step_ms=500)
    part_b = readings(sensors=40, start_ms=T0 + 25_000, end_ms=T0 + 60_000, step_ms=500)
    args = ["--bootstrap", broker.bootstrap, "--no-generate", "--group", "restart", "--window-size", "10",
            "--grace", "2", "--idle-timeout", "600000", "--show-windows", "0",
            "--config", fast_group_config(tmp_path)]

    produce(broker.bootstrap, to_records(part_a))
    first = HostProcess(*args)
    first.wait_consumed(len(part_a))
    # Once the commits settle, they point into the open window [20 s, 30 s).
    wait_committed(broker.bootstrap, "restart", "iot-readings")
    first.kill()  # SIGKILL: no flush, no commit, no goodbye
    emitted_before_kill = windows_of(consume_all(broker.bootstrap, "iot-windows"))
    assert emitted_before_kill, "windows [0,10) and [10,20) had closed before the kill"
    assert all(w["window_start"] < T0 // 1000 + 20 for w in emitted_before_kill)

    produce(broker.bootstrap, to_records(part_b))
    second = HostProcess(*args, "--run-for", "600", "--on-stop", "close")  # the last member: the input ends
    second.wait_consumed(len(part_b))
    time.sleep(2)
    assert second.stop() == 0, second.output()  # graceful, closing: emits the last windows

    expected, late = tumbling_windows(by_partition_of(part_a + part_b), size_s=10, grace_s=2)
    assert not late
    seen = check_windows_complete(windows_of(consume_all(broker.bootstrap, "iot-windows")), expected)
    # The windows the first run emitted are not emitted again by the second.
    assert all(count == 1 for count in seen.values()), {k: c for k, c in seen.items() if c > 1}
