"""The MQTT side of the device gateway (issue 14) with clients we did not write: Debian's
mosquitto (started here on a free loopback port), paho-mqtt publishing as devices, and
confluent-kafka reading iot-readings and iot-dlq back. Payload forms, invalid readings in the
DLQ with the decoder's reason, the per-device rate limit, two gateways sharing the
subscription, reconnects, windows of MQTT readings, and the whole diagram with --via."""
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import (Broker, HostProcess, check_windows_complete, consume_all, readings,  # noqa: E402
                      run_host, windows_of)
from reference import tumbling_windows  # noqa: E402
from test_gateway import reading  # noqa: E402  (one reading's JSON, as the HTTP tests send it)

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OVERRIDES = {"flood-1": {"rate": 50, "burst": 20}, "calm-1": {"rate": 100, "burst": 100}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """mosquitto on a free loopback port, anonymous, from a temporary config file."""

    def __init__(self, tmp_path, port=None):
        self.port = port or free_port()
        self.config = tmp_path / f"mosquitto-{self.port}.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                               "max_queued_messages 1000000\nmax_inflight_messages 100\n")
        self.log = tmp_path / f"mosquitto-{self.port}.log"
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.05)
        raise AssertionError("mosquitto did not come up:\n" + self.log.read_text())

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def stats(port):
    """GET /v1/gateway/stats of the gateway serving on `port`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/gateway/stats")
    out = json.loads(conn.getresponse().read())
    conn.close()
    return out


class MqttGateway:
    """An `iotstream-host gateway` subscribed to a mosquitto (HTTP on a free port for its stats)."""

    def __init__(self, kafka, mosquitto, *args):
        self.host = HostProcess("gateway", "--bootstrap", kafka.bootstrap, "--listen", "127.0.0.1:0",
                                "--mqtt", mosquitto.address, *args)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            self.port = next((int(line.split("http://127.0.0.1:")[1].split()[0]) for line in self.host.lines
                              if "listening on http://" in line), None)
            if self.host.proc.poll() is not None:
                raise AssertionError("gateway exited:\n" + self.host.output())
            time.sleep(0.05)
        assert self.port, self.host.output()
        self.wait(lambda m: m["subscribed"] >= 1, "subscribed")

    def stats(self):
        return stats(self.port)

    def wait(self, predicate, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self.stats()["mqtt"]
            if predicate(m):
                return m
            time.sleep(0.05)
        raise AssertionError(f"gateway never {what}: {self.stats()}\n{self.host.output()}")

    def stop(self):
        assert self.host.stop() == 0, self.host.output()


class Device:
    """A paho-mqtt client publishing as devices."""

    def __init__(self, mosquitto, client_id):
        self.client = paho.Client(client_id=client_id, protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", mosquitto.port)
        self.client.loop_start()

    def publish(self, device, payload, qos=1, wait=True):
        info = self.client.publish(f"devices/{device}/readings", payload, qos=qos)
        if wait:
            info.wait_for_publish(timeout=10)
            assert info.is_published()
        return info

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def of_key(records, key):
    return [(json.loads(v), h) for k, v, h in records if k == key]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("kafka"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield m
    m.stop()


@pytest.fixture(scope="module")
def gateway(kafka, mosquitto, tmp_path_factory):
    config = tmp_path_factory.mktemp("gateway") / "config.json"
    config.write_text(json.dumps({"ingest": {"devices": OVERRIDES}}))
    g = MqttGateway(kafka, mosquitto, "--config", str(config), "--device-rate", "1000", "--device-burst", "1000",
                    "--mqtt-client-id", "gateway-a")
    yield g
    g.stop()


def test_payload_forms_reach_iot_readings_and_invalid_ones_the_dlq(gateway, kafka, mosquitto):
    device = Device(mosquitto, "test-forms")
    before = gateway.stats()["mqtt"]
    ts = [f"2026-04-01T00:00:{i:02d}.000Z" for i in range(10)]
    valid = [reading("m-1", 10.0 + i, ts=ts[i]) for i in range(7)]
    device.publish("m-1", json.dumps(valid[0]))                                   # one reading
    device.publish("m-1", json.dumps(valid[1:4]))                                 # a JSON array
    device.publish("m-1", "\n".join(json.dumps(r) for r in valid[4:6]) + "\n")   # NDJSON
    no_id = {"timestamp": ts[6], "data": valid[6]["data"]}                         # sensor_id from the topic
    device.publish("m-1", json.dumps(no_id), qos=0)
    missing = {"sensor_id": "m-1", "timestamp": ts[7], "data": {"temperature": 20.0, "pressure": 1000.0}}
    wrong = {"sensor_id": "m-1", "timestamp": ts[8], "data": {"temperature": "warm", "humidity": 1, "pressure": 1}}
    device.publish("m-1", json.dumps([missing, wrong]))
    device.publish("m-1", "{not json")
    device.publish("m-1", json.dumps(reading("m-2", 99.0)))                      # another device's sensor_id
    device.close()

    m = gateway.wait(lambda m: m["received"] >= before["received"] + 11, "received 11 readings")
    assert m["accepted"] - before["accepted"] == 7, m
    assert m["invalid"] - before["invalid"] == 3, m
    assert m["forbidden"] - before["forbidden"] == 1, m
    assert m["messages"] - before["messages"] == 7, m

    mine = of_key(consume_all(kafka.bootstrap, "iot-readings", expect=7), "m-1")
    assert sorted((v["timestamp"], v["data"]["temperature"]) for v, _ in mine) == \
        sorted((r["timestamp"], r["data"]["temperature"]) for r in valid)
    for envelope, _ in mine:
        assert envelope["sensor_id"] == "m-1" and len(envelope["message_id"]) == 36
    assert not of_key(consume_all(kafka.bootstrap, "iot-readings"), "m-2")  # forbidden: never produced

    dead = {h["iotstream.reason"].decode(): v for k, v, h in consume_all(kafka.bootstrap, "iot-dlq", expect=3)
            if k == "m-1" and h.get("iotstream.source") == b"ingest:m-1"}
    assert sorted(dead) == ["missing_field", "not_json", "wrong_type"], dead
    assert json.loads(dead["missing_field"]) == missing and json.loads(dead["wrong_type"]) == wrong
    assert dead["not_json"] == b"{not json"


def test_the_rate_limit_holds_per_device(gateway, kafka, mosquitto):
    # flood-1 (rate 50/s, burst 20) publishes far above its rate for 4 s while calm-1 (100/s,
    # burst 100) sends 60: the flood is cut to about rate * t + burst, calm-1 loses nothing.
    flood, calm = Device(mosquitto, "test-flood"), Device(mosquitto, "test-calm")
    before = gateway.stats()["mqtt"]
    body = json.dumps(reading("flood-1"))
    sent = 0
    start = time.monotonic()
    calm_thread = threading.Thread(target=lambda: [calm.publish("calm-1", json.dumps(reading("calm-1", i)))
                                                   for i in range(60)])
    calm_thread.start()
    while time.monotonic() - start < 4.0:
        flood.publish("flood-1", body, qos=1, wait=sent % 50 == 49)  # ~thousands/s, acked in steps
        sent += 1
    elapsed = time.monotonic() - start
    calm_thread.join()
    flood.publish("flood-1", body, qos=1)  # the last one, acknowledged: the broker has them all
    sent += 1
    flood.close()
    calm.close()
    m = gateway.wait(lambda m: m["received"] >= before["received"] + sent + 60, "received the flood")
    records = consume_all(kafka.bootstrap, "iot-readings")
    accepted = len(of_key(records, "flood-1"))
    model = OVERRIDES["flood-1"]["rate"] * elapsed + OVERRIDES["flood-1"]["burst"]
    print(f"flood-1: sent {sent} in {elapsed:.2f} s, accepted {accepted}, model {model:.1f}; "
          f"rate limited {m['rate_limited'] - before['rate_limited']}")
    assert sent > 5 * model
    # The gateway sees the flood over about the publisher's span; 10 % covers where it starts
    # and ends (the HTTP test can time each request and holds 5 %).
    assert abs(accepted - model) <= 0.10 * model, (accepted, model)
    assert m["rate_limited"] - before["rate_limited"] == sent - accepted
    assert len(of_key(records, "calm-1")) == 60


def test_two_gateways_share_the_subscription(gateway, kafka, mosquitto):
    second = MqttGateway(kafka, mosquitto, "--device-rate", "1000", "--device-burst", "1000",
                         "--mqtt-client-id", "gateway-b")
    try:
        before = [gateway.stats()["mqtt"], second.stats()["mqtt"]]
        device = Device(mosquitto, "test-share")
        sent = {}
        for i in range(1000):
            sensor = f"share-{i % 100}"
            r = reading(sensor, float(i), ts=f"2026-05-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z")
            sent.setdefault(sensor, []).append((r["timestamp"], r["data"]["temperature"]))
            device.publish(sensor, json.dumps(r), wait=i % 100 == 99)
        device.close()
        total = lambda: sum(g.stats()["mqtt"]["received"] - b["received"]  # noqa: E731
                            for g, b in zip((gateway, second), before))
        deadline = time.time() + 30
        while total() < 1000 and time.time() < deadline:
            time.sleep(0.1)
        after = [gateway.stats()["mqtt"], second.stats()["mqtt"]]
        split = [a["accepted"] - b["accepted"] for a, b in zip(after, before)]
        print(f"two gateways accepted {split}")
        assert sum(split) == 1000 and min(split) >= 300, split  # mosquitto shares round-robin
        records = consume_all(kafka.bootstrap, "iot-readings", expect=None)
        for sensor, expected in sent.items():
            got = sorted((v["timestamp"], v["data"]["temperature"]) for v, _ in of_key(records, sensor))
            assert got == sorted(expected), sensor  # each reading once
    finally:
        second.stop()


def test_the_gateway_reconnects_with_backoff(kafka, tmp_path):
    broker = Mosquitto(tmp_path)
    g = MqttGateway(kafka, broker, "--device-rate", "1000", "--device-burst", "1000", "--mqtt-qos", "0")
    try:
        broker.stop()
        g.wait(lambda m: m["connected"] == 0, "noticed the lost broker")
        broker = Mosquitto(tmp_path, port=broker.port)  # the same address again
        m = g.wait(lambda m: m["subscribed"] == 1 and m["connects"] == 2, "reconnected", timeout=40)
        assert m["disconnects"] == 1
        device = Device(broker, "test-reconnect")
        device.publish("re-1", json.dumps(reading("re-1", 1.0)))
        device.close()
        g.wait(lambda m: m["accepted"] == 1, "accepted after the reconnect")
    finally:
        g.stop()
        broker.stop()


def test_windows_of_mqtt_readings_appear_when_the_pipeline_runs(tmp_path, mosquitto):
    kafka = Broker(tmp_path)
    t0 = 1_767_225_600_000
    rows = readings(sensors=6, start_ms=t0, end_ms=t0 + 8_000, step_ms=250)
    # A share group of its own: the module's gateway keeps its share of $share/iotstream.
    host = HostProcess("--bootstrap", kafka.bootstrap, "--no-generate", "--mqtt", mosquitto.address,
                       "--mqtt-topic", "$share/windows/devices/+/readings", "--mqtt-client-id", "windows-run", "--device-rate", "10000", "--device-burst", "10000",
                       "--window-size", "2", "--grace", "1", "--show-windows", "0", "--on-stop", "close")
    try:
        deadline = time.time() + 30
        port = None
        while port is None and time.time() < deadline:
            assert host.proc.poll() is None, host.output()
            port = next((int(line.split("http://127.0.0.1:")[1].split()[0]) for line in host.lines
                         if line.startswith("gateway listening on http://")), None)
            time.sleep(0.05)
        assert port, host.output()
        while stats(port)["mqtt"]["subscribed"] < 1:  # granted asynchronously
            assert time.time() < deadline, host.output()
            time.sleep(0.05)
        device = Device(mosquitto, "test-windows")
        for start in range(t0, t0 + 8_000, 2_000):  # window by window, each sensor's readings as one array
            for sensor in sorted({s for s, _, _ in rows}):
                mine = [{"sensor_id": s, "timestamp": ts, "data": d} for s, ts, d in rows
                        if s == sensor and start <= ts < start + 2_000]
                device.publish(sensor, json.dumps(mine))
        device.close()
        host.wait_consumed(len(rows))
        assert host.stop() == 0, host.output()
        expected, late = tumbling_windows({0: rows}, 2, 1)
        assert not late
        check_windows_complete(windows_of(consume_all(kafka.bootstrap, "iot-windows")), expected)
    finally:
        if host.proc.poll() is None:
            host.kill()
        kafka.stop()


@pytest.mark.parametrize("via", ["mqtt", "http"])
def test_via_runs_the_whole_diagram(tmp_path, via):
    # Devices -> gateway (its own mosquitto for mqtt) -> Kafka -> pipeline, in one command.
    summary = tmp_path / "summary.json"
    run_host("--via", via, "--count", "3000", "--rate", "3000", "--sensors", "1000", "--window-size", "2",
             "--grace", "0", "--partitions", "2", "--show-windows", "0", "--summary-json", str(summary),
             timeout=150)
    s = json.loads(summary.read_text())
    assert s["devices"]["sent"] == 3000 and s["devices"]["acked"] == 3000, s["devices"]
    assert s["gateway"]["ingest"]["accepted"] == 3000, s["gateway"]
    assert s["pipeline"]["consumed"] == 3000 and s["reconciled"], s["pipeline"]
    assert s["pipeline"]["emitted"]["windows"] > 0
    if via == "mqtt":
        assert s["gateway"]["mqtt"]["accepted"] == 3000


def test_a_qos1_message_is_acknowledged_only_after_its_readings_are_handled(tmp_path):
    # The gateway's producer holds one message at most and Kafka is unreachable: the first
    # reading is accepted into the producer's queue, the second meets backpressure, so the
    # message callback waits and its PUBACK is withheld. The gateway is then killed (SIGKILL);
    # a new one with the same client id resumes the session and the broker sends the
    # unacknowledged message again, with those queued after it.
    broker = Mosquitto(tmp_path)
    kafka = Broker(tmp_path)
    config = tmp_path / "tiny-queue.json"
    config.write_text(json.dumps({"ingest": {"producer": {"kafka": {"queue.buffering.max.messages": 1}}}}))

    class Unreachable:
        bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there

    first = MqttGateway(Unreachable, broker, "--mqtt-client-id", "crash-1", "--config", str(config))
    second = None
    try:
        device = Device(broker, "test-crash")
        for i in range(5):
            device.publish("crash-dev", json.dumps(reading("crash-dev", float(i))))  # acknowledged by the broker
        device.close()
        first.wait(lambda m: m["backpressure_retries"] > 0, "waited on backpressure")
        assert first.stats()["mqtt"]["accepted"] == 1
        first.host.kill()
        second = MqttGateway(kafka, broker, "--mqtt-client-id", "crash-1")
        second.wait(lambda m: m["accepted"] >= 4, "received the unacknowledged messages again")
        got = sorted(v["data"]["temperature"] for v, _ in of_key(consume_all(kafka.bootstrap, "iot-readings", expect=4),
                                                                 "crash-dev"))
        # Every message whose callback had not returned comes again. The first may come again
        # too: libmosquitto writes queued PUBACKs after it has read and handled the packets at
        # hand, so its PUBACK can still wait behind the stuck callback (at least once: a
        # duplicate, never a loss, for a message that was acknowledged late).
        assert got in ([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0, 4.0]), got
    finally:
        if first.host.proc.poll() is None:
            first.host.kill()
        if second:
            second.stop()
        kafka.stop()
        broker.stop()
