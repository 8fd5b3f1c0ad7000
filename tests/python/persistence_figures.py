"""Persistence figures for midge: bytes written to disk per persisted message, and
start-up time with a large state. Also the same write figure for SQLite (WAL, synchronous
FULL), the B-tree engine a broker would otherwise reach for.

    cargo build --release -p midge
    target/e2e-venv/bin/python tests/python/persistence_figures.py target/release/midge

(`bash tests/run` creates the venv with paho-mqtt.) Bytes written are the kernel's count of
what the process sent to the block layer (`write_bytes` in /proc/PID/io), so they include
every page rewritten by each fsync.
"""

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

V2 = mqtt.CallbackAPIVersion.VERSION2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes")


class Broker:
    def __init__(self, binary, data_dir, mode="sync"):
        self.port = free_port()
        config = os.path.join(data_dir, "midge.toml")
        with open(config, "w") as f:
            f.write('[limits]\nmax_queued_messages = 0\nmax_inflight_messages = 100\n')
        self.log = open(os.path.join(data_dir, "midge.log"), "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "-c", config, "--bind", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(data_dir, "state"), "--persistence", mode, "--log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.ready_after = self.wait_ready()

    def wait_ready(self):
        """Seconds from spawn until a client gets its CONNACK (the listener is bound
        before recovery, so a TCP connection alone proves nothing)."""
        connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port)) as s:
                    s.sendall(connect)
                    if s.recv(4)[:1] == b"\x20":
                        return time.monotonic() - self.started
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("midge exited")
            time.sleep(0.005)

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def client(port, client_id, clean=True, window=100):
    c = mqtt.Client(V2, client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    return c


def publish_all(port, count, size, window):
    """Publishes `count` QoS 1 messages with up to `window` unacknowledged; returns msg/s."""
    done = threading.Semaphore(0)
    c = client(port, "publisher", window=window)
    c.on_publish = lambda *a: done.release()
    c.loop_start()
    payload = b"x" * size
    start = time.monotonic()
    for i in range(count):
        c.publish(f"bench/{i % 16}", payload, qos=1)
    for _ in range(count):
        done.acquire()
    elapsed = time.monotonic() - start
    c.loop_stop()
    c.disconnect()
    return count / elapsed


def offline_sink(port):
    c = client(port, "sink", clean=False)
    c.loop_start()
    r = c.subscribe("bench/#", qos=1)
    time.sleep(0.2)
    c.loop_stop()
    c.disconnect()
    assert r[0] == 0


def drain_sink(port, count):
    got = threading.Semaphore(0)
    c = client(port, "sink", clean=False)
    c.on_message = lambda *a: got.release()
    c.loop_start()
    for _ in range(count):
        if not got.acquire(timeout=30):
            raise RuntimeError("sink did not receive everything")
    time.sleep(1.5)  # its PUBACKs processed and logged (within a second)
    c.loop_stop()
    c.disconnect()


def midge_writes(binary, size, count, window, mode):
    with tempfile.TemporaryDirectory(dir=os.environ.get("FIGURES_DIR")) as tmp:
        broker = Broker(binary, tmp, mode)
        offline_sink(broker.port)
        time.sleep(0.3)
        before = write_bytes(broker.proc.pid)
        rate = publish_all(broker.port, count, size, window)
        time.sleep(0.3)
        stored = write_bytes(broker.proc.pid)
        drain_sink(broker.port, count)
        drained = write_bytes(broker.proc.pid)
        broker.stop()
        return rate, (stored - before) / count, (drained - stored) / count


def sqlite_writes(size, count, batch):
    with tempfile.TemporaryDirectory(dir=os.environ.get("FIGURES_DIR")) as tmp:
        db = sqlite3.connect(os.path.join(tmp, "q.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB)")
        payload = b"x" * size
        before = write_bytes(os.getpid())
        for i in range(0, count, batch):
            db.execute("BEGIN")
            for j in range(batch):
                db.execute("INSERT INTO q (topic, payload) VALUES (?, ?)",
                           (f"bench/{(i + j) % 16}", payload))
            db.execute("COMMIT")
        after = write_bytes(os.getpid())
        db.close()
        return (after - before) / count


def startup(binary, retained, sessions):
    with tempfile.TemporaryDirectory(dir=os.environ.get("FIGURES_DIR")) as tmp:
        broker = Broker(binary, tmp)
        c = client(broker.port, "filler")
        c.loop_start()
        payload = b"v" * 100
        for i in range(retained):
            info = c.publish(f"retained/{i // 1000}/{i}", payload, qos=0, retain=True)
            if i % 5000 == 0:
                info.wait_for_publish()
        c.publish("retained/last", payload, qos=1, retain=True).wait_for_publish()
        c.loop_stop()
        c.disconnect()
        for i in range(sessions):
            s = client(broker.port, f"session-{i}", clean=False)
            s.loop_start()
            s.subscribe(f"devices/{i}/cmd", qos=1)[1]
            time.sleep(0.001)
            s.loop_stop()
            s.disconnect()
        time.sleep(1)
        broker.kill()
        state = os.path.join(tmp, "state")
        size = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state))
        again = Broker(binary, tmp)
        ready = again.ready_after
        again.stop()
        recovered = [line for line in open(os.path.join(tmp, "midge.log"))
                     if "recovered" in line][-1].strip()
        return ready, size, recovered


def main():
    binary = sys.argv[1]
    print("| persistence | payload | publisher window | QoS 1 msg/s | bytes written per message stored | per message delivered and acknowledged |")
    print("|---|---|---|---|---|---|")
    runs = [("sync", 100, 1), ("sync", 1024, 1), ("sync", 100, 100), ("sync", 1024, 100),
            ("periodic", 100, 100), ("off", 100, 100)]
    for mode, size, window in runs:
        count = 500 if window == 1 else 20000
        rate, stored, drained = midge_writes(binary, size, count, window, mode)
        print(f"| {mode} | {size} B | {window} | {rate:,.0f} | {stored:,.0f} | {drained:,.0f} |")
    print()
    print("| SQLite WAL synchronous=FULL | rows per transaction | bytes written per row |")
    print("|---|---|---|")
    for size in (100, 1024):
        for batch in (1, 100):
            count = 500 if batch == 1 else 20000
            print(f"| {size} B | {batch} | {sqlite_writes(size, count, batch):,.0f} |")
    print()
    retained, sessions = 100_000, 1_000
    ready, size, recovered = startup(binary, retained, sessions)
    print(f"start-up with {retained:,} retained messages and {sessions:,} sessions "
          f"({size / 1e6:.1f} MB on disk): first CONNACK after {ready * 1000:.0f} ms")
    print(f"  log: {recovered}")


if __name__ == "__main__":
    main()
