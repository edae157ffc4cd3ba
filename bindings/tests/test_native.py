"""The native layer's promises: GIL released while blocking, Ctrl-C interrupts, load generator."""
import os
import signal
import threading
import time

import pytest

import iotstream


def test_blocking_poll_releases_the_gil(broker, new_topic):
    topic = new_topic(1)
    ticks = 0
    stop = threading.Event()

    def spin():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    with broker.consumer(topic) as consumer:
        thread = threading.Thread(target=spin)
        thread.start()
        started = ticks
        consumer.poll(timeout=1.0)   # an empty topic: the full second is spent blocked in C
        during = ticks - started
        stop.set()
        thread.join()
    assert during > 50


def interrupt_soon(delay=0.3):
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_interrupts_a_poll_without_timeout(broker, new_topic):
    with broker.consumer(new_topic(1)) as consumer:
        timer = interrupt_soon()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            consumer.poll(timeout=None)
        timer.join()
        assert time.monotonic() - started < 5


def test_ctrl_c_interrupts_waiting_for_the_load_generator(broker, new_topic):
    with iotstream.LoadGenerator(broker, rate=100, duration=60, topic=new_topic()) as generator:
        generator.start()
        timer = interrupt_soon()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            generator.wait()
        timer.join()
        assert time.monotonic() - started < 5
        generator.stop()
        assert generator.wait(timeout=10)


def test_load_generator_counts(broker, new_topic):
    with iotstream.LoadGenerator(broker, count=3000, sensors=50, anomaly_share=0.1, topic=new_topic()) as generator:
        stats = generator.run(timeout=60)
    assert stats["sent"] == 3000
    assert 100 < stats["anomalous"] < 600


def test_load_generator_needs_an_end(broker):
    with pytest.raises(iotstream.InvalidArgumentError, match="duration"):
        iotstream.LoadGenerator(broker)
