"""The live dashboard of iotstream-host (issue 15), against readings we produce ourselves with
a client we did not write and an independent model of what they must show: the JSON routes
(latest window per sensor, search, summary counters and dead letters), the alert stream
(server-sent events, one per hot reading), and the page itself in headless Chromium driven by
playwright-core (tests/dashboard/browser_check.js), which saves a screenshot in the build
folder."""
import http.client
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import BUILD, Broker, HostProcess, envelope, produce  # noqa: E402
from correctness import wait_until  # noqa: E402

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW_S = 10
SENSORS = [f"sensor_{i}" for i in range(12)]
HOT = {("sensor_3", T0 + 12_000), ("sensor_7", T0 + 31_000), ("sensor_11", T0 + 47_000)}
NODE_MODULES = Path(os.environ.get("IOTSTREAM_NODE_MODULES", "/usr/local/lib/iotstream-node/node_modules"))


def rows():
    out = []
    for ts in range(T0, T0 + 60_000, 1000):
        for i, s in enumerate(SENSORS):
            temperature = 45.0 if (s, ts) in HOT else 20.0 + (i + ts // 1000) % 10
            out.append((s, ts, {"temperature": temperature, "humidity": 50.0, "pressure": 1010.0,
                                "battery_level": 80.0}))
    return out


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, (path, response.status, body)
    return response, body


def get_json(port, path):
    return json.loads(get(port, path)[1])


def read_alert_events(port, expect, timeout=30):
    """Reads the SSE stream until `expect` alert events arrived; returns their JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", "/api/alerts")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    events, event, ids = [], {}, []
    deadline = time.time() + timeout
    while len(events) < expect and time.time() < deadline:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("id: "):
            ids.append(int(line[4:]))
        elif line == "" and event:
            if event.get("event") == "alert":
                events.append(event["data"])
            event = {}
    conn.close()
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    return events


def test_the_dashboard_shows_windows_alerts_and_counters_and_renders_in_a_browser(tmp_path):
    broker = Broker(tmp_path, partitions=4)
    host = None
    try:
        readings = rows()
        produce(broker.bootstrap, [(s, envelope(s, ts, d)) for s, ts, d in readings] + [("junk", "not json {")])
        host = HostProcess("--bootstrap", broker.bootstrap, "--no-generate", "--group", "dash",
                           "--window-size", str(WINDOW_S), "--grace", "1", "--idle-timeout", "1500",
                           "--show-windows", "0", "--dashboard-listen", "127.0.0.1:0")
        port = int(wait_until(lambda: next((re.search(r":(\d+)/", l).group(1) for l in host.lines
                                            if l.startswith("dashboard at http://")), None),
                              30, "the dashboard's address"))

        # Every sensor's latest window is the last one, [50 s, 60 s), closed by the idle timeout,
        # with the model's sample count and temperature range.
        last_start = (T0 + 60_000 - WINDOW_S * 1000) // 1000
        windows = wait_until(lambda: (
            lambda r: r if len(r["windows"]) == len(SENSORS) and all(w["window_start"] == last_start for w in r["windows"]) else None
        )(get_json(port, "/api/windows?limit=1000")), 60, "every sensor's last window")["windows"]
        assert sorted(w["sensor_id"] for w in windows) == sorted(SENSORS)
        for w in windows:
            temps = [d["temperature"] for s, ts, d in readings if s == w["sensor_id"] and ts // 1000 >= last_start]
            assert w["sample_count"] == len(temps) == WINDOW_S
            assert w["temperature"]["min"] == min(temps) and w["temperature"]["max"] == max(temps)
        found = get_json(port, "/api/windows?q=sensor_1&limit=1000")["windows"]
        assert sorted(w["sensor_id"] for w in found) == sorted(s for s in SENSORS if "sensor_1" in s)
        assert len(get_json(port, "/api/windows?limit=2")["windows"]) == 2

        # One alert per hot reading, each naming its sensor and value.
        alerts = read_alert_events(port, expect=len(HOT))
        assert sorted((a["sensor_id"], a["event_time_ms"]) for a in alerts) == sorted(HOT)
        assert all(a["rule"] == "temperature_out_of_range" and a["value"] == 45.0 for a in alerts)

        summary = get_json(port, "/api/summary")
        assert summary["pipeline"]["consumed"] == len(readings) + 1
        assert summary["pipeline"]["dead_lettered"]["by_reason"] == {"not_json": 1}
        assert summary["tapped"]["alerts"] == len(HOT)
        assert summary["sensors"] == len(SENSORS)
        assert {p["name"] for p in summary["plugins"]["plugins"]} >= {"window", "aggregate", "anomaly"}
        wait_until(lambda: len(get_json(port, "/api/summary")["history"]) >= 2, 60, "a throughput history")
        page = get(port, "/")[1].decode()
        assert "<canvas id=\"throughput\"" in page and "EventSource" in page
        assert b"iotstream_pipeline_consumed_total" in get(port, "/metrics")[1]

        # The page in a real browser: rows, alerts, dead letters, plugins, search; a screenshot.
        screenshot = BUILD / "dashboard.png"
        assert (NODE_MODULES / "playwright-core").is_dir(), \
            f"playwright-core is not installed in {NODE_MODULES}: run scripts/install-deps.sh"
        check = subprocess.run(["node", str(Path(__file__).with_name("browser_check.js")), f"http://127.0.0.1:{port}/",
                                str(screenshot), str(len(SENSORS)), str(len(HOT))],
                               env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
                               capture_output=True, text=True, timeout=180)
        assert check.returncode == 0, check.stdout + check.stderr
        assert screenshot.stat().st_size > 10_000
        assert host.stop() == 0, host.output()
        host = None
    finally:
        if host is not None:
            host.kill()
        broker.stop()
