"""What governance costs per run: an audit-log append (hash, lock, checkpoint signature), a full
chain verification, a provenance manifest (sign + write) and its check, and the monitoring
statistics of a video (a second decode of the input) next to the anonymization itself.

    VEIL_DATA=../shared/data python bench/governance_overhead.py [--events 500] [--out gov.json]

Runs in a temporary VEIL_HOME (never the user's data directory). Wall-clock times on a shared
machine: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("VEIL_DATA", "../shared/data")))
    ap.add_argument("--seconds", type=float, default=3.0, help="Length of the hamilton excerpt anonymized.")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="veil-gov-bench-")
    os.environ["VEIL_HOME"] = home
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import veil
    from veil.audit import AuditLog, load_key, verify_output, write_manifest
    from veil.monitor import collect_item

    res: dict = {}
    log = AuditLog()
    times = []
    for i in range(args.events):
        t0 = time.perf_counter()
        log.append("bench.event", {"i": i, "input_sha256": "0" * 64, "counts": {"frames": 100, "faces": 3}})
        times.append(time.perf_counter() - t0)
    res["append_ms_median"] = 1000 * statistics.median(times)
    res["append_ms_p95"] = 1000 * sorted(times)[int(0.95 * len(times))]
    t0 = time.perf_counter()
    rep = log.verify()
    res["verify_ms"] = 1000 * (time.perf_counter() - t0)
    res["verify_events"] = rep.events
    assert rep.ok

    clip = args.data / "video" / "hamilton" / "short_hamilton_clip.mp4"
    out = Path(home) / "h.mp4"
    anon = veil.Anonymizer(start=0.0, end=args.seconds)
    t0 = time.perf_counter()
    item = anon.video(clip, out)
    res["anonymize_s"] = time.perf_counter() - t0
    res["frames"] = item.counts["frames"]
    t0 = time.perf_counter()
    collect_item(item, anon.config)
    res["monitor_stats_s"] = time.perf_counter() - t0
    key = load_key()
    t0 = time.perf_counter()
    write_manifest(out, item.output_sha256, {"input": {"sha256": item.input_sha256}}, key)
    res["manifest_write_ms"] = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    assert verify_output(out).ok
    res["manifest_verify_ms"] = 1000 * (time.perf_counter() - t0)
    res["output_bytes"] = out.stat().st_size
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
