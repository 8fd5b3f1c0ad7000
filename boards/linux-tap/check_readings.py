"""Checks what the two subscribers of one e2e.sh scenario received.

Usage: check_readings.py SUB1_OUT SUB2_OUT ELAPSED_SECS SCENARIO CHECKS_FILE [--no-restart]
SUB1_OUT is the subscriber before the broker restart, SUB2_OUT the one after; with
--no-restart there was no restart (and no will checked) and SUB2_OUT is empty.
Appends the number of passed checks to CHECKS_FILE; exits 1 if any failed.
"""
import sys

sub1, sub2, elapsed = open(sys.argv[1]).read(), open(sys.argv[2]).read(), int(sys.argv[3])
scenario, checks_file = sys.argv[4], sys.argv[5]
restart = "--no-restart" not in sys.argv[6:]
failures, passed = [], 0

def check(cond, what):
    global passed
    print(f"e2e: {'ok' if cond else 'FAILED'}: {scenario}: {what}")
    if cond:
        passed += 1
    else:
        failures.append(what)

def parse(text):
    readings, status = [], []
    for line in text.splitlines():
        topic, _, payload = line.partition(" ")
        if topic == "sensors/e2e/temperature":
            readings.append(payload)
        elif topic == "devices/e2e/status":
            status.append(payload)
        elif not topic.startswith("e2e/probe/"):
            failures.append(f"unexpected line {line!r}")
    return readings, status

r1, s1 = parse(sub1)
r2, s2 = parse(sub2)
by_seq = {}
byte_exact = True
for payload in r1 + r2:
    # The node's synthetic sensor reads 20 + (seq mod 16) / 4 °C; only `up` (seconds
    # since boot) is not predictable, so every other byte is checked exactly.
    try:
        seq = int(payload.split('"seq":')[1].split(",")[0])
        up = int(payload.split('"up":')[1].rstrip("}"))
    except (IndexError, ValueError):
        byte_exact = False
        print(f"e2e: unparsable payload {payload!r}")
        continue
    expected = '{"t":%r,"seq":%d,"up":%d}' % (20 + (seq % 16) * 0.25, seq, up)
    if payload != expected:
        byte_exact = False
        print(f"e2e: payload {payload!r} != expected {expected!r}")
    if by_seq.setdefault(seq, payload) != payload:
        byte_exact = False
        print(f"e2e: seq {seq} delivered twice with different bytes")
check(byte_exact, f"{len(r1) + len(r2)} readings byte-exact (duplicates identical)")
seqs = sorted(by_seq)
missing = sorted(set(range(seqs[-1] + 1)) - set(seqs)) if seqs else ["all"]
check(not missing, f"seq 0..{seqs[-1] if seqs else '-'} complete, no gaps (missing: {missing[:20]})")
ups = [int(by_seq[s].split('"up":')[1].rstrip("}")) for s in seqs]
check(ups == sorted(ups) and ups[-1] <= elapsed, f"uptimes monotonic and within the run ({ups[-1] if ups else '-'} s <= {elapsed} s)")
if restart:
    first_after = min(int(p.split('"seq":')[1].split(",")[0]) for p in r2) if r2 else None
    last_before = max(int(p.split('"seq":')[1].split(",")[0]) for p in r1) if r1 else None
    check(first_after is not None and last_before is not None and first_after <= last_before + 1,
          f"sub2 continues where sub1 stopped (sub1 last seq {last_before}, sub2 first seq {first_after})")
    check(s1[:1] == ["online"], f"status online on the first broker: {s1}")
    # The restarted broker may first send a retained status it kept from the first run.
    check("online" in s2 and s2[-1:] == ["offline"],
          f"status online after the reconnect, offline (will) when the node died: {s2}")
else:
    check(s1 == ["online"], f"status online: {s1}")
open(checks_file, "a").write(f"{passed}\n")
sys.exit(1 if failures else 0)
