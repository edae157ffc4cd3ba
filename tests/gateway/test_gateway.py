"""The HTTP device gateway (issue 14) with a client we did not write (http.client) against a real
iotstream-host gateway process and iotstream-broker: per-reading results, auth, limits, rate
limiting measured against the token-bucket model, slow clients, and readings checked back out
of Kafka with confluent-kafka."""
import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import (Broker, HostProcess, check_windows_complete, consume_all, readings,  # noqa: E402
                      windows_of)
from reference import tumbling_windows  # noqa: E402

TOKENS = {"dev-1": "tok-dev-1-0123456789", "dev-2": "tok-dev-2-0123456789", "slow-1": "tok-slow-1-012345",
          "rate-a": "tok-rate-a-012345", "rate-b": "tok-rate-b-012345", "kafka-1": "tok-kafka-1-012345"}
OVERRIDES = {"slow-1": {"rate": 1, "burst": 5}, "rate-a": {"rate": 40, "burst": 10},
             "rate-b": {"rate": 100, "burst": 30}}
MAX_BODY = 4096


def write_tokens(tmp_path, tokens):
    path = tmp_path / "tokens"
    path.write_text("# device token\n" + "".join(f"{d} {t}\n" for d, t in tokens.items()))
    return str(path)


class Gateway:
    """An `iotstream-host gateway` process on a free loopback port."""

    def __init__(self, *args):
        self.host = HostProcess(*args, "--listen", "127.0.0.1:0")
        deadline = time.time() + 30
        while time.time() < deadline:
            for line in self.host.lines:
                if "listening on http://" in line:
                    self.port = int(line.split("http://127.0.0.1:")[1].split()[0])
                    return
            if self.host.proc.poll() is not None:
                raise AssertionError("gateway exited:\n" + self.host.output())
            time.sleep(0.05)
        raise AssertionError("gateway did not print its address:\n" + self.host.output())

    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post(self, device, body, token=None, conn=None, headers=None):
        """(status, headers, parsed JSON body) of one POST /v1/readings."""
        own = conn is None
        conn = conn or self.connection()
        h = {"Content-Type": "application/json"}
        if device is not None:
            h["X-Device-Id"] = device
        if token is not None or device in TOKENS:
            h["Authorization"] = "Bearer " + (token if token is not None else TOKENS[device])
        h.update(headers or {})
        conn.request("POST", "/v1/readings", body=body.encode() if isinstance(body, str) else body, headers=h)
        response = conn.getresponse()
        payload = response.read()
        if own:
            conn.close()
        return response.status, dict(response.getheaders()), json.loads(payload) if payload else None

    def stats(self):
        conn = self.connection()
        conn.request("GET", "/v1/gateway/stats")
        out = json.loads(conn.getresponse().read())
        conn.close()
        return out

    def stop(self):
        assert self.host.stop() == 0, self.host.output()


def reading(sensor, temperature=21.5, ts=None, **extra):
    r = {"sensor_id": sensor, "data": {"temperature": temperature, "humidity": 40.0, "pressure": 1013.0}}
    if ts is not None:
        r["timestamp"] = ts
    r.update(extra)
    return r


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def gateway(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway")
    config = tmp / "config.json"
    config.write_text(json.dumps({"ingest": {"devices": OVERRIDES}}))
    g = Gateway("gateway", "--bootstrap", broker.bootstrap, "--device-tokens", write_tokens(tmp, TOKENS),
                "--config", str(config), "--device-rate", "1000", "--device-burst", "1000",
                "--max-body-bytes", str(MAX_BODY))
    yield g
    g.stop()


def statuses(body):
    return [r["status"] + (":" + r["reason"] if "reason" in r else "") for r in body["results"]]


def test_every_payload_form_gets_per_reading_results(gateway):
    status, _, body = gateway.post("dev-1", json.dumps(reading("dev-1")))
    assert status == 202 and body["accepted"] == 1 and statuses(body) == ["accepted"]

    missing_humidity = {"sensor_id": "dev-1", "data": {"temperature": 20.0, "pressure": 1000.0}}
    array = [reading("dev-1", 1.0), missing_humidity, reading("dev-1", 3.0), {"data": {"temperature": "hot"}}]
    status, _, body = gateway.post("dev-1", json.dumps(array))
    assert status == 202, body
    assert statuses(body) == ["accepted", "invalid:missing_field", "accepted", "invalid:wrong_type"]
    assert body["accepted"] == 2 and body["rejected"] == 2
    assert "humidity" in body["results"][1]["detail"]

    ndjson = "\n".join(json.dumps(reading("dev-1", t)) for t in (5.0, 6.0, 7.0)) + "\n"
    status, _, body = gateway.post("dev-1", ndjson, headers={"Content-Type": "application/x-ndjson"})
    assert status == 202 and statuses(body) == ["accepted"] * 3


def test_nothing_valid_is_400_with_the_reason(gateway):
    status, _, body = gateway.post("dev-1", "{not json")
    assert status == 400 and statuses(body) == ["invalid:not_json"]
    assert body["error"].startswith("not_json")
    status, _, body = gateway.post("dev-1", json.dumps([{"sensor_id": "dev-1", "data": {"temperature": 1}}]))
    assert status == 400 and body["error"].startswith("missing_field"), body
    status, _, body = gateway.post("dev-1", "")
    assert status == 400 and "empty body" in body["error"]


def test_unauthenticated_requests_get_401_are_counted_and_never_produced(gateway):
    before = gateway.stats()["http"]["unauthenticated"]
    marker = reading("dev-1", ts="2026-01-01T00:00:00.001Z", note="unauthenticated")
    cases = [
        ("dev-1", ""),                           # no token
        ("dev-1", "tok-dev-1-0123456788"),       # wrong last byte
        ("dev-1", TOKENS["dev-2"]),              # another device's token
        ("dev-1", TOKENS["dev-1"] + "x"),        # longer
        ("nobody", TOKENS["dev-1"]),             # unknown device
        (None, TOKENS["dev-1"]),                 # no device id
    ]
    for device, token in cases:
        status, headers, body = gateway.post(device, json.dumps(marker), token=token)
        assert status == 401, (device, token, body)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert gateway.stats()["http"]["unauthenticated"] == before + len(cases)


def test_a_device_may_post_only_its_own_sensor_id(gateway):
    status, _, body = gateway.post("dev-1", json.dumps(reading("dev-2")))
    assert status == 403 and statuses(body) == ["forbidden:foreign_sensor_id"]
    # One foreign reading spoils the payload: nothing of it is produced.
    status, _, body = gateway.post("dev-1", json.dumps([reading("dev-1"), reading("dev-2")]))
    assert status == 403 and statuses(body) == ["forbidden:foreign_sensor_id"] * 2


def test_bodies_over_the_limit_get_413(gateway):
    big = json.dumps([reading("dev-1")] * 100)
    assert len(big) > MAX_BODY
    status, _, body = gateway.post("dev-1", big)
    assert status == 413 and str(MAX_BODY) in body["error"]
    # Chunked (no Content-Length): refused once the body passes the limit.
    conn = gateway.connection()
    conn.putrequest("POST", "/v1/readings")
    for name, value in (("X-Device-Id", "dev-1"), ("Authorization", "Bearer " + TOKENS["dev-1"]),
                        ("Transfer-Encoding", "chunked")):
        conn.putheader(name, value)
    conn.endheaders()
    for i in range(0, len(big), 1000):
        chunk = big[i:i + 1000].encode()
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    # Within the limit, the same connection style works.
    status, _, _ = gateway.post("dev-1", json.dumps([reading("dev-1")] * 5))
    assert status == 202


def raw_exchange(gateway, data):
    """Sends raw bytes and returns the status line's code and the raw answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_routes_and_malformed_requests(gateway):
    conn = gateway.connection()
    conn.request("GET", "/v1/readings")
    response = conn.getresponse()
    response.read()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    conn.request("GET", "/nowhere")  # the same keep-alive connection
    response = conn.getresponse()
    response.read()
    assert response.status == 404
    conn.close()
    assert raw_exchange(gateway, b"NOT A REQUEST\r\n\r\n")[0] == 400
    huge_header = b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"
    assert raw_exchange(gateway, huge_header)[0] == 431
    # Expect: 100-continue with a Content-Length over the limit: 413 before any body is sent.
    status, _ = raw_exchange(gateway, b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nX-Device-Id: dev-1\r\n"
                             b"Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
    assert status == 413
    # Within the limit the client is told to go on, then answered.
    body = json.dumps(reading("dev-1")).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nX-Device-Id: dev-1\r\nAuthorization: Bearer " +
                  TOKENS["dev-1"].encode() + b"\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        assert s.recv(100).startswith(b"HTTP/1.1 202 Accepted")


def test_over_the_rate_is_429_with_retry_after(gateway):
    conn = gateway.connection()
    answers = [gateway.post("slow-1", json.dumps(reading("slow-1")), conn=conn) for _ in range(6)]
    assert [a[0] for a in answers[:5]] == [202] * 5  # the burst
    status, headers, body = answers[5]
    assert status == 429 and statuses(body) == ["rate_limited:rate_limited"]
    # rate 1/s: the next token is at most a second away; Retry-After is whole seconds, rounded up.
    assert 0 < body["results"][0]["retry_after_ms"] <= 1000
    assert headers["Retry-After"] == "1"
    time.sleep(1.1)
    assert gateway.post("slow-1", json.dumps(reading("slow-1")), conn=conn)[0] == 202
    conn.close()


def hammer(gateway, device, seconds, out):
    """Sends single readings as fast as one keep-alive connection allows; records the time span
    and the number accepted."""
    conn = gateway.connection()
    body = json.dumps(reading(device))
    accepted = limited = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        status, headers, _ = gateway.post(device, body, conn=conn)
        if status == 202:
            accepted += 1
        else:
            assert status == 429 and "Retry-After" in headers
            limited += 1
    out[device] = (accepted, limited, time.monotonic() - start)
    conn.close()


def test_each_device_rate_holds_within_5_percent(gateway):
    # Two devices at once, with their own limits (config overrides): the token-bucket model
    # allows rate * t + burst readings in t seconds of constant demand.
    out = {}
    threads = [threading.Thread(target=hammer, args=(gateway, d, 10.0, out)) for d in ("rate-a", "rate-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for device, (accepted, limited, elapsed) in out.items():
        model = OVERRIDES[device]["rate"] * elapsed + OVERRIDES[device]["burst"]
        print(f"{device}: accepted {accepted} in {elapsed:.2f} s, model {model:.1f}, refused {limited}")
        assert limited > accepted, (device, out)  # demand was well above the rate
        assert abs(accepted - model) <= 0.05 * model, (device, accepted, model, out)


def test_readings_reach_iot_readings_as_sent(gateway, broker):
    sent = [reading("kafka-1", 10.0 + i, ts=f"2026-03-01T00:00:{i:02d}.000Z") for i in range(20)]
    status, _, body = gateway.post("kafka-1", json.dumps(sent[:10]))
    assert status == 202 and body["accepted"] == 10
    status, _, body = gateway.post("kafka-1", "\n".join(json.dumps(r) for r in sent[10:]))
    assert status == 202 and body["accepted"] == 10
    invalid = {"sensor_id": "kafka-1", "data": {"temperature": "warm", "humidity": 1, "pressure": 1}}
    assert gateway.post("kafka-1", json.dumps(invalid))[0] == 400
    assert gateway.post("kafka-1", json.dumps(reading("kafka-1", note="x")), token="wrong-token-000000")[0] == 401

    records = [(k, json.loads(v)) for k, v, _ in consume_all(broker.bootstrap, "iot-readings")]
    mine = [(k, v) for k, v in records if k == "kafka-1"]
    assert len(mine) == 20, mine[:3]
    for key, envelope in mine:
        assert envelope["sensor_id"] == key and len(envelope["message_id"]) == 36
    got = sorted((v["timestamp"], v["data"]["temperature"]) for _, v in mine)
    assert got == sorted((r["timestamp"], r["data"]["temperature"]) for r in sent)
    # Never produced: other devices' unauthenticated or forbidden payloads.
    assert not [v for _, v in records if v["timestamp"] == "2026-01-01T00:00:00.001Z"]
    assert not [v for k, v in records if v["sensor_id"] == "dev-2"]

    dead = [(k, v, h) for k, v, h in consume_all(broker.bootstrap, "iot-dlq") if k == "kafka-1"]
    assert len(dead) == 1 and json.loads(dead[0][1]) == invalid
    assert dead[0][2]["iotstream.reason"] == b"wrong_type"


def test_slow_clients_time_out_and_connections_are_bounded(broker, tmp_path):
    g = Gateway("gateway", "--bootstrap", broker.bootstrap, "--device-tokens", write_tokens(tmp_path, TOKENS),
                "--read-timeout-ms", "1000", "--max-connections", "4")
    try:
        # Slow-loris: a header trickling in a byte at a time is cut off at the request deadline.
        loris = socket.create_connection(("127.0.0.1", g.port))
        loris.sendall(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        closed_after = None
        loris.settimeout(0.2)
        while time.monotonic() - start < 5:
            try:
                loris.sendall(b"X")
                if loris.recv(1) == b"":
                    closed_after = time.monotonic() - start
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
        loris.close()
        assert closed_after is not None and 0.5 < closed_after < 2.0, closed_after

        # Four idle connections fill the server; a fifth is answered 503 and closed.
        idle = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(4)]
        time.sleep(0.2)
        status, headers, body = g.post("dev-1", json.dumps(reading("dev-1")))
        assert status == 503 and headers["Retry-After"] == "1", body
        # The idle ones are closed at the read deadline; then devices get through again.
        time.sleep(1.2)
        status, _, _ = g.post("dev-1", json.dumps(reading("dev-1")))
        assert status == 202
        for s in idle:
            s.close()
        http_stats = g.stats()["http"]
        assert http_stats["timeouts"] >= 5 and http_stats["connections_refused"] == 1, http_stats
    finally:
        g.stop()


def test_windows_of_gateway_readings_appear_when_the_pipeline_runs(tmp_path):
    broker = Broker(tmp_path)
    t0 = 1_767_225_600_000
    rows = readings(sensors=6, start_ms=t0, end_ms=t0 + 8_000, step_ms=250)
    token_file = tmp_path / "shared"
    token_file.write_text("shared-token-0123456789\n")
    host = HostProcess("--bootstrap", broker.bootstrap, "--no-generate", "--gateway-listen", "127.0.0.1:0",
                       "--shared-token-file", str(token_file), "--device-rate", "10000", "--device-burst", "10000",
                       "--window-size", "2", "--grace", "1", "--show-windows", "0", "--on-stop", "close")
    try:
        deadline = time.time() + 30
        port = None
        while port is None and time.time() < deadline:
            port = next((int(line.rsplit(":", 1)[1].split()[0]) for line in host.lines
                         if line.startswith("gateway listening on")), None)
            time.sleep(0.05)
        assert port, host.output()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # Window by window, each sensor's readings of that window as one NDJSON request.
        for start in range(t0, t0 + 8_000, 2_000):
            for sensor in sorted({s for s, _, _ in rows}):
                mine = [{"sensor_id": s, "timestamp": ts, "data": d} for s, ts, d in rows
                        if s == sensor and start <= ts < start + 2_000]
                conn.request("POST", "/v1/readings", body="\n".join(json.dumps(r) for r in mine),
                             headers={"X-Device-Id": sensor, "Authorization": "Bearer shared-token-0123456789"})
                response = conn.getresponse()
                body = json.loads(response.read())
                assert response.status == 202 and body["accepted"] == len(mine), body
        conn.close()
        host.wait_consumed(len(rows))
        assert host.stop() == 0, host.output()  # graceful: every open window is closed and emitted
        expected, late = tumbling_windows({0: rows}, 2, 1)
        assert not late
        check_windows_complete(windows_of(consume_all(broker.bootstrap, "iot-windows")), expected)
    finally:
        if host.proc.poll() is None:
            host.kill()
        broker.stop()
