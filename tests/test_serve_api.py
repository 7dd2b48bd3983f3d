"""``veil serve``'s REST API with FastAPI's test client: the whole review flow on a real image
and a real clip (analysis in worker processes), and everything it must refuse."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from clips import cut, region_diff  # noqa: E402
from veil.serve import ServeSettings, create_app  # noqa: E402
from veil.serve.security import hash_token  # noqa: E402
from veil.serve.store import JobStore  # noqa: E402

H = {"X-Veil-CSRF": "1", "X-Veil-Reviewer": "ana"}


def make_client(tmp_path: Path, **kw) -> TestClient:
    return TestClient(create_app(ServeSettings(data_dir=tmp_path / "data", sse_interval_s=0.05, **kw)))


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def wait(client: TestClient, job_id: str) -> list[dict]:
    """Follow the job's SSE stream until it stops; the events seen."""
    seen = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


@pytest.fixture()
def client(tmp_path):
    with make_client(tmp_path, max_upload_mb=20) as c:
        yield c


def upload(client, data: bytes, name: str):
    return client.post(f"/api/jobs?name={name}", content=data, headers=H)


def test_image_review_flow_keep_add_export(client, astronaut, tmp_path):
    r = upload(client, png_bytes(astronaut), "astronaut.png")
    assert r.status_code == 201, r.text
    job = r.json()
    events = wait(client, job["id"])
    assert events[-1]["status"] == "review", events
    plan = client.get(f"/api/jobs/{job['id']}/plan").json()
    assert plan["input"]["kind"] == "image" and len(plan["tracks"]) >= 1
    face = plan["tracks"][0]
    # keep the face (with a reason), and hide a region the detector did not flag
    r = client.post(f"/api/jobs/{job['id']}/edits", headers=H,
                    json={"op": "decision", "track": face["id"], "decision": "keep", "reason": "consent on file"})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/jobs/{job['id']}/edits", headers=H,
                    json={"op": "add", "mode": "static", "keyframes": [[0, [300, 300, 400, 400]]]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    # export is refused until someone reviewed to the end
    assert client.post(f"/api/jobs/{job['id']}/export", headers=H).status_code == 409
    assert client.post(f"/api/jobs/{job['id']}/reviewed", headers=H, json={"to_end": True, "frame": 0}).status_code == 200
    assert client.post(f"/api/jobs/{job['id']}/export", headers=H).status_code == 202
    assert wait(client, job["id"])[-1]["status"] == "exported"
    out = client.get(f"/api/jobs/{job['id']}/output")
    assert out.status_code == 200
    got = np.asarray(Image.open(io.BytesIO(out.content)).convert("RGB"))
    assert region_diff(got, astronaut, face["frames"][0]["box"]) < 2  # the kept face is visible
    assert region_diff(got, astronaut, (300, 300, 400, 400)) > 5  # the manual box is hidden
    hist = client.get(f"/api/jobs/{job['id']}/history").json()
    actions = [(h["who"], h["action"]) for h in hist]
    assert ("ana", "decision") in actions and ("ana", "add") in actions and ("ana", "reviewed to the end") in actions
    dec = next(h for h in hist if h["action"] == "decision")
    assert dec["before"]["decision"] == "anonymize" and dec["after"]["decision"] == "keep"
    bundle = client.get(f"/api/jobs/{job['id']}/bundle").json()
    assert bundle["history"] == hist and bundle["plan"]["tracks"]


def test_undo_redo_and_stale_edits(client, astronaut):
    job = upload(client, png_bytes(astronaut), "a.png").json()
    wait(client, job["id"])
    tid = client.get(f"/api/jobs/{job['id']}/plan").json()["tracks"][0]["id"]
    client.post(f"/api/jobs/{job['id']}/edits", headers=H, json={"op": "delete", "track": tid})
    assert client.get(f"/api/jobs/{job['id']}/plan").json()["tracks"] == [] or \
        all(t["id"] != tid for t in client.get(f"/api/jobs/{job['id']}/plan").json()["tracks"])
    r = client.post(f"/api/jobs/{job['id']}/undo", headers=H)
    assert r.status_code == 200 and any(t["id"] == tid for t in r.json()["plan"]["tracks"])
    assert client.post(f"/api/jobs/{job['id']}/undo", headers=H).status_code == 409  # the analysis stays
    r = client.post(f"/api/jobs/{job['id']}/redo", headers=H)
    assert r.status_code == 200 and all(t["id"] != tid for t in r.json()["plan"]["tracks"])
    stale = client.post(f"/api/jobs/{job['id']}/edits", headers=H, json={"op": "add", "keyframes": [[0, [1, 1, 9, 9]]],
                                                                          "base_version": 1})
    assert stale.status_code == 409


def test_bad_edits_are_refused_and_change_nothing(client, astronaut):
    job = upload(client, png_bytes(astronaut), "a.png").json()
    wait(client, job["id"])
    before = client.get(f"/api/jobs/{job['id']}/plan")
    for body in ({"op": "add", "mode": "static", "keyframes": [[0, [500, 500, 700, 560]]]},  # outside 512x512
                 {"op": "add", "keyframes": [[3, [1, 1, 9, 9]]]},  # past the last frame
                 {"op": "decision", "track": 999, "decision": "keep", "reason": "x"},
                 {"op": "decision", "track": 0, "decision": "keep", "reason": " "},
                 {"op": "trim", "track": 0, "first": 5, "last": 9}):
        r = client.post(f"/api/jobs/{job['id']}/edits", headers=H, json=body)
        assert r.status_code == 422, (body, r.text)
        assert "\n" not in r.json()["detail"]
    after = client.get(f"/api/jobs/{job['id']}/plan")
    assert after.headers["x-plan-version"] == before.headers["x-plan-version"] == "1"
    assert after.json() == before.json()
    assert [h["action"] for h in client.get(f"/api/jobs/{job['id']}/history").json()] == ["analyzed"]


def test_a_plan_for_another_file_is_refused(client, astronaut, grace_hopper):
    a = upload(client, png_bytes(astronaut), "a.png").json()
    b = upload(client, png_bytes(grace_hopper), "b.png").json()
    wait(client, a["id"]), wait(client, b["id"])
    other = client.get(f"/api/jobs/{b['id']}/plan").json()
    r = client.put(f"/api/jobs/{a['id']}/plan", headers=H, json=other)
    assert r.status_code == 422 and "another file" in r.json()["detail"]
    mine = client.get(f"/api/jobs/{a['id']}/plan").json()
    mine["tracks"] = []
    assert client.put(f"/api/jobs/{a['id']}/plan", headers=H, json=mine).status_code == 200


@pytest.mark.parametrize("data, name, code, words", [
    (b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000, "clip.mp4", 422, "damaged"),
    (b"just some text", "notes.txt", 415, "not a supported"),
    (b"GIF89a not really", "x.png", 422, ""),
    (b"", "empty.mp4", 422, "empty"),
])
def test_bad_uploads_are_refused_and_leave_nothing(client, tmp_path, data, name, code, words):
    r = upload(client, data, name)
    assert r.status_code == code, r.text
    assert words in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert client.get("/api/jobs").json() == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_upload_limit(tmp_path):
    with make_client(tmp_path, max_upload_mb=1) as c:
        r = c.post("/api/jobs?name=big.mp4", content=b"\0" * (2 << 20), headers=H)
        assert r.status_code == 413
        assert c.get("/api/jobs").json() == [] and list((tmp_path / "data" / "jobs").iterdir()) == []


def test_paths_only_under_roots(tmp_path, astronaut):
    root = tmp_path / "media"
    root.mkdir()
    Image.fromarray(astronaut).save(root / "a.png")
    secret = tmp_path / "secret.png"
    Image.fromarray(astronaut).save(secret)
    with make_client(tmp_path, roots=[root]) as c:
        for bad in (str(secret), str(root / ".." / "secret.png"), "/etc/passwd"):
            assert c.post("/api/jobs/from-path", headers=H, json={"path": bad}).status_code == 403
        (root / "link.png").symlink_to(secret)
        assert c.post("/api/jobs/from-path", headers=H, json={"path": str(root / "link.png")}).status_code == 403
        r = c.post("/api/jobs/from-path", headers=H, json={"path": str(root / "a.png")})
        assert r.status_code == 201
        assert wait(c, r.json()["id"])[-1]["status"] == "review"
    with make_client(tmp_path / "b") as c:  # no roots: no paths at all
        assert c.post("/api/jobs/from-path", headers=H, json={"path": str(root / "a.png")}).status_code == 403


def test_cross_site_requests_are_refused(client, astronaut):
    assert client.post("/api/jobs?name=a.png", content=png_bytes(astronaut)).status_code == 403  # no header
    evil = {**H, "Origin": "http://evil.example"}
    assert client.post("/api/jobs?name=a.png", content=png_bytes(astronaut), headers=evil).status_code == 403
    site = {**H, "Sec-Fetch-Site": "cross-site"}
    assert client.post("/api/jobs?name=a.png", content=png_bytes(astronaut), headers=site).status_code == 403
    assert client.get("/api/jobs").json() == []
    same = {**H, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/jobs?name=a.png", content=png_bytes(astronaut), headers=same).status_code == 201


def test_token_required_when_configured_and_never_logged(tmp_path, astronaut, caplog):
    token = "correct-horse-battery-staple-42"
    caplog.set_level(logging.INFO, logger="veil.serve")
    with make_client(tmp_path, token_sha256=hash_token(token)) as c:
        assert c.get("/api/jobs").status_code == 401
        assert c.get("/", follow_redirects=False).headers["location"] == "/login"
        assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        r = c.post("/login", data={"token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert c.get("/api/jobs").status_code == 200  # the cookie
        job = c.post("/api/jobs?name=a.png", content=png_bytes(astronaut), headers=H).json()
        wait(c, job["id"])
        c.get(f"/api/jobs/{job['id']}/frames/0.jpg")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/api/jobs" in logged and token not in logged and "Bearer" not in logged
    assert token not in (tmp_path / "data" / "serve.sqlite").read_bytes().decode("latin-1")


def test_restart_marks_running_jobs_interrupted_and_offers_no_output(tmp_path):
    store = JobStore(tmp_path / "data" / "serve.sqlite")
    running = store.create("x.mp4", "video", tmp_path / "x.mp4", {})
    store.claim(running, ("queued",), "exporting")
    store.update(running, output=str(tmp_path / "half.mp4"))
    (tmp_path / "half.mp4").write_bytes(b"partial")
    with make_client(tmp_path) as c:
        job = c.get(f"/api/jobs/{running}").json()
        assert job["status"] == "interrupted" and "stopped" in job["error"] and not job["output_ready"]
        assert c.get(f"/api/jobs/{running}/output").status_code == 409
        assert [e["status"] for e in wait(c, running)] == ["interrupted"]


def test_video_job_serves_exact_frames_and_previews(client, hamilton, tmp_path):
    clip = cut(hamilton, tmp_path / "c.mp4", start=0.0, frames=12)
    job = upload(client, clip.read_bytes(), "c.mp4").json()
    events = wait(client, job["id"])
    assert events[-1]["status"] == "review" and events[-1]["done"] == 12
    plan = client.get(f"/api/jobs/{job['id']}/plan").json()
    from clips import decode

    src = decode(clip)
    for i in (0, 1, 7, 3, 4, 11):  # forward steps, a jump back, the last frame
        r = client.get(f"/api/jobs/{job['id']}/frames/{i}.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        got = np.asarray(Image.open(io.BytesIO(r.content)))
        assert got.shape == src[i].shape
        assert np.abs(got.astype(int) - src[i]).mean() < 3  # that frame, not a neighbour (JPEG noise only)
        if i > 0:
            assert np.abs(got.astype(int) - src[i - 1]).mean() > np.abs(got.astype(int) - src[i]).mean()
    assert client.get(f"/api/jobs/{job['id']}/frames/12.jpg").status_code == 404
    if plan["tracks"]:
        t = max(plan["tracks"], key=lambda t: min(f["box"][2] - f["box"][0] for f in t["frames"]))
        f = t["frames"][0]
        anon = np.asarray(Image.open(io.BytesIO(client.get(
            f"/api/jobs/{job['id']}/frames/{f['index']}.jpg?view=anonymized").content)))
        assert region_diff(anon, src[f["index"]], f["box"]) > 5
        assert client.get(f"/api/jobs/{job['id']}/tracks/{t['id']}/thumb.jpg").status_code == 200
        # follow a face from one drawn box (its detected box in the middle frame), both ways
        mid = t["frames"][len(t["frames"]) // 2]
        r = client.post(f"/api/jobs/{job['id']}/edits", headers=H,
                        json={"op": "add", "mode": "follow", "keyframes": [[mid["index"], mid["box"]]]})
        assert r.status_code == 200, r.text
        followed = next(x for x in r.json()["plan"]["tracks"] if x["source"] == "manual")
        assert followed["frames"][0]["index"] < mid["index"] < followed["frames"][-1]["index"]
        truth = {f["index"]: f["box"] for f in t["frames"] if not f.get("interpolated")}
        ious = [_iou(f["box"], truth[f["index"]]) for f in followed["frames"] if f["index"] in truth]
        assert len(ious) >= 6 and np.median(ious) > 0.5, ious
        # a hand-edited plan asking to follow (``"follow": true``) is followed when uploaded
        plan["tracks"] = [{"id": 0, "decision": "anonymize", "source": "manual", "follow": True,
                           "keyframes": [{"index": mid["index"], "box": mid["box"]}]}]
        r = client.put(f"/api/jobs/{job['id']}/plan", headers=H, json=plan)
        assert r.status_code == 200, r.text
        (put,) = r.json()["plan"]["tracks"]
        assert "follow" not in put and put["frames"][0]["index"] < mid["index"] < put["frames"][-1]["index"]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_openapi_page(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/jobs/{job_id}/edits" in paths and "/api/jobs/{job_id}/events" in paths


@pytest.mark.parametrize("flags", [["-display_rotation", "90"], ["-display_rotation", "-90", "-display_hflip"]])
def test_exact_frames_are_in_the_plans_orientation(tmp_path, flags):
    """The server's frames are turned as analysis saw them (display matrix), so boxes line up."""
    import av as pyav

    from helpers import ffmpeg
    from veil.config import VideoConfig
    from veil.io.video import decode_video
    from veil.io.frame_source import FrameSource

    plain = tmp_path / "plain.mp4"
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (48, 64, 3), np.uint8)
    with pyav.open(str(plain), "w") as out:
        vs = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "0"})
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv444p"
        for i in range(3):
            f = pyav.VideoFrame.from_ndarray(np.roll(img, i * 5, axis=1), format="rgb24").reformat(format="yuv444p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode())
    import subprocess

    tagged = tmp_path / "tagged.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", *flags, "-i", str(plain), "-c", "copy", str(tagged)], check=True)
    seen = list(decode_video(tagged, VideoConfig()))
    src = FrameSource(tagged, "video", [t for _, t in seen])
    for i in (2, 0, 1):
        got = src.frame(i)
        assert got.shape == seen[i][0].shape == (64, 48, 3)
        assert np.array_equal(got, seen[i][0])


def test_serve_refuses_other_addresses_without_a_token(monkeypatch):
    from typer.testing import CliRunner

    from veil.cli.main import app

    monkeypatch.delenv("VEIL_SERVE_TOKEN", raising=False)
    res = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "VEIL_SERVE_TOKEN" in res.output
    monkeypatch.setenv("VEIL_SERVE_TOKEN", "short")
    assert CliRunner().invoke(app, ["serve", "--host", "192.168.1.5"]).exit_code == 2
