"""How many times one ``veil anonymize`` of a single video opens and reads its input (issue #13).

Runs the CLI in this process with ``av.open`` wrapped: every open of the input file is
counted, and every video packet read from it (each is decoded: about one frame each), next
to the frames the run wrote. Prints one JSON line.

    VEIL_DATA=/work/shared/data python bench/count_opens.py [--clip video/hamilton/short_hamilton_clip.mp4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's veil, not an installed one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="video/hamilton/short_hamilton_clip.mp4", help="path under $VEIL_DATA")
    ap.add_argument("--end", type=float, default=1.0, help="seconds of the clip to anonymize (--end)")
    args = ap.parse_args()
    src = Path(os.environ.get("VEIL_DATA", "../shared/data")) / args.clip
    opens: list[str] = []
    packets = [0]
    real_open = av.open

    class Counted:
        """The container, with its video packets counted (demux and decode)."""

        def __init__(self, inp):
            self._inp = inp

        def __getattr__(self, name):
            return getattr(self._inp, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._inp.__exit__(*exc)

        def demux(self, *streams):
            for packet in self._inp.demux(*streams):
                packets[0] += packet.stream.type == "video" and packet.size > 0
                yield packet

        def decode(self, *streams):
            for packet in self.demux(*streams):
                yield from packet.decode()

    def counting_open(target, *a, **kw):
        if str(target) == str(src) and (len(a) == 0 or a[0] == "r") and kw.get("mode", "r") == "r":
            opens.append(str(target))
            return Counted(real_open(target, *a, **kw))
        return real_open(target, *a, **kw)

    av.open = counting_open
    from typer.testing import CliRunner

    from veil.cli.main import app

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "out.mp4"
        result = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(dst), "--end", str(args.end), "--preset", "fast"])
        ok = result.exit_code == 0 and dst.exists()
        written = av.open(str(dst)).streams.video[0].frames if ok else 0
    print(json.dumps({"clip": args.clip, "exit_code": result.exit_code, "output_written": ok, "input_opens": len(opens),
                      "video_packets_read": packets[0], "frames_written": written}))
    if not ok:
        print(result.output, file=sys.stderr)


if __name__ == "__main__":
    main()
