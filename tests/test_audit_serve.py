"""Review actions in ``veil serve`` are audit-log events (who, what, which job), without the
reasons' free text."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from veil.audit import AuditLog  # noqa: E402
from veil.serve import ServeSettings, create_app  # noqa: E402

H = {"X-Veil-CSRF": "1", "X-Veil-Reviewer": "ana"}


def test_review_actions_are_audit_events(tmp_path, astronaut):
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="PNG")
    with TestClient(create_app(ServeSettings(data_dir=tmp_path / "data", sse_interval_s=0.05))) as client:
        job = client.post("/api/jobs?name=a.png", content=buf.getvalue(), headers=H).json()
        with client.stream("GET", f"/api/jobs/{job['id']}/events") as r:
            statuses = [json.loads(line[6:])["status"] for line in r.iter_lines() if line.startswith("data: ")]
        assert statuses[-1] == "review"
        track = client.get(f"/api/jobs/{job['id']}/plan").json()["tracks"][0]["id"]
        r = client.post(f"/api/jobs/{job['id']}/edits", headers=H,
                        json={"op": "decision", "track": track, "decision": "keep", "reason": "consent of Jane Roe"})
        assert r.status_code == 200, r.text
        assert client.post(f"/api/jobs/{job['id']}/reviewed", headers=H, json={"to_end": True, "frame": 0}).status_code == 200
    log = AuditLog()
    assert log.verify().ok
    review = [(e.kind, e.body["who"], e.body["job_id"]) for e in log.events(kinds=["review."])]
    assert ("review.analyzed", "veil", job["id"]) in review
    assert ("review.decision", "ana", job["id"]) in review and ("review.reviewed_to_the_end", "ana", job["id"]) in review
    assert b"Jane" not in log.path.read_bytes()
    from veil.audit.compliance import activity

    act = activity(log.events())
    assert act["reviewers"] == ["ana"] and act["review_actions"]["review.decision"] == 1
