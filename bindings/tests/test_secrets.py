"""Issue 13: a secret in the Kafka config never reaches a log line or an error message, even at
trace level with every librdkafka debug context on."""
import os
import subprocess
import sys

SECRET = "S3cr3t-never-logged-7781"

SCRIPT = f"""
import iotstream
SECRET = {SECRET!r}
with iotstream.Broker() as broker:
    kafka = {{"debug": "all", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
             "sasl.username": "alice", "sasl.password": SECRET, "ssl.key.password": SECRET,
             "message.timeout.ms": 3000}}
    try:
        with iotstream.Producer(broker, kafka=kafka) as producer:
            producer.send("s-1", {{"temperature": 1.0}})
            try:
                producer.flush(timeout=5)
            except iotstream.IotstreamError as e:
                print("flush:", e)
    except iotstream.IotstreamError as e:
        print("producer:", e)
    # Wrong types for secret keys: the errors name the key, never the value.
    for bad in ({{"sasl.password": {{"nested": SECRET}}}}, {{"sasl.password": [SECRET]}}):
        try:
            iotstream.Producer(broker, kafka=bad)
        except iotstream.IotstreamError as e:
            print("config error:", e)
"""


def test_no_secret_in_any_log_line_or_error_at_trace_level_with_librdkafka_debug_on():
    env = dict(os.environ, IOTSTREAM_LOG_LEVEL="trace")
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    # The capture is real: librdkafka's debug lines and both config errors are in it.
    assert "sasl.password" in output, output[-4000:]
    assert output.count("config error:") == 2, output[-4000:]
    assert len(output.splitlines()) > 50, output[-4000:]
    assert SECRET not in output, [line for line in output.splitlines() if SECRET in line][:5]
