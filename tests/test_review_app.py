"""The review app in a real browser (Playwright for Python driving Debian's Chromium, never a
downloaded browser) against a real ``veil serve`` process on 127.0.0.1: upload a real clip,
wait for the analysis, keep one face, add a missed face by drawing keyframes, export, and
check the exported frames; the same for a photo. Bad input through the app shows an error and
changes nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clips import anonymized_masks, assert_visible, cut, decode, region_diff, unchanged_diffs
from conftest import require
from serve_helpers import CHROMIUM, get_bytes, get_json, launch_chromium, veil_server

sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
T = 180_000  # ms: analysis and export run on a loaded 2-core machine


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM, "Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def shot(page, tmp_path: Path, name: str) -> None:
    """Screenshots land in tmp; VEIL_FIGURES=1 also puts them in docs/figures (for the docs)."""
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("VEIL_FIGURES"):
        shutil.copy(tmp_path / name, ROOT / "docs" / "figures" / name)


def draw(page, box, size):
    """Drag a box (frame pixels) on the overlay."""
    bb = page.locator("#overlay").bounding_box()
    sx, sy = bb["width"] / size[0], bb["height"] / size[1]
    x1, y1, x2, y2 = box
    page.mouse.move(bb["x"] + x1 * sx, bb["y"] + y1 * sy)
    page.mouse.down()
    page.mouse.move(bb["x"] + x2 * sx, bb["y"] + y2 * sy, steps=4)
    page.mouse.up()


def frame_shown(page, i: int) -> None:
    page.wait_for_function(f"document.querySelector('#frame').dataset.index === '{i}'", timeout=T)


def upload_and_open(browser, url: str, media: Path):
    """A fresh page as reviewer "ana", ``media`` uploaded, its analysis done and frame 0 shown;
    and the list the page's script errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.fill("#reviewer", "ana")
    page.dispatch_event("#reviewer", "change")
    page.set_input_files("#file", str(media))
    page.wait_for_selector("#tracks .track", timeout=T)
    frame_shown(page, 0)
    return page, errors


def test_review_keep_add_missed_face_export(browser, hamilton, tmp_path):
    clip = cut(hamilton, tmp_path / "clip.mp4", start=0.0, frames=48)
    with veil_server(tmp_path / "data") as url:
        page, errors = upload_and_open(browser, url, clip)
        job_id = page.evaluate("S.job.id")
        api = f"{url}/api/jobs/{job_id}"
        before = get_json(f"{api}/plan")
        W, H = before["input"]["width"], before["input"]["height"]
        by_len = sorted(before["tracks"], key=lambda t: (-len(t["frames"]), -min(f["score"] for f in t["frames"])))
        kept = by_len[0]
        missed = next(t for t in by_len[1:] if min(f["score"] for f in t["frames"]) > 0.5)

        # frame stepping is exact: keys and buttons
        page.click("#timecode")
        page.keyboard.press("ArrowRight")
        frame_shown(page, 1)
        page.click("#next-frame")
        frame_shown(page, 2)
        assert page.inner_text("#frame-no") == f"frame 2 / {before['input']['frames'] - 1}"
        page.keyboard.press("Shift+ArrowLeft")
        frame_shown(page, 0)
        # playback (requestVideoFrameCallback follows the browser's frames), then pause on an exact frame
        page.click("#play")
        page.wait_for_function("S.playing && S.index >= 3", timeout=T)
        page.click("#play")
        page.wait_for_function("!S.playing && document.querySelector('#frame').dataset.index === String(S.index)",
                               timeout=T)
        assert page.inner_text("#frame-no").startswith(f"frame {page.evaluate('S.index')} /")
        page.keyboard.press("Home")
        frame_shown(page, 0)

        # keep a face, with a reason
        page.click(f'.track[data-id="{kept["id"]}"] .toggle')
        page.fill("#reason", "on stage, consented")
        page.click("#reason-ok")
        page.wait_for_selector(f'.track.keep[data-id="{kept["id"]}"]', timeout=T)

        # a face the detector "missed": its track deleted, then drawn back on two keyframes
        page.click(f'.track[data-id="{missed["id"]}"] .delete')
        page.wait_for_selector(f'.track[data-id="{missed["id"]}"]', state="detached", timeout=T)
        # keyframes 10 frames apart (this clip cuts to a close-up at frame 14)
        first = missed["frames"][0]
        last = next(f for f in missed["frames"] if f["index"] >= first["index"] + 10)
        page.click(f'#rows .row[data-id="{kept["id"]}"]', position={"x": 1, "y": 5})  # seek to frame 0
        frame_shown(page, 0)
        page.click("#timecode")
        page.keyboard.press("d")
        draw(page, first["box"], (W, H))
        page.click("#timecode")
        for _ in range(last["index"] - first["index"]):
            page.keyboard.press("ArrowRight")
        frame_shown(page, last["index"])
        draw(page, last["box"], (W, H))
        page.check('input[name="mode"][value="interpolate"]')
        assert page.inner_text("#kf-count") == "2"
        page.click("#add-apply")
        page.wait_for_selector(".track.manual", timeout=T)
        page.click("#timecode")
        page.keyboard.press("Home")
        frame_shown(page, 0)
        page.check("#beforeafter")
        page.wait_for_function("document.querySelector('#after').complete", timeout=T)
        page.wait_for_timeout(500)
        shot(page, tmp_path, "review-app.png")

        # a bad edit through the app: an error is shown, nothing changes
        version = page.evaluate("S.version")
        page.click("#timecode")
        page.keyboard.press("d")
        draw(page, (5, 5, 60, 60), (W, H))
        page.check('input[name="mode"][value="static"]')
        page.fill("#add-to", "9999")
        page.click("#add-apply")
        page.wait_for_selector("#error:not([hidden])", timeout=T)
        assert "past the last frame" in page.inner_text("#error")
        assert page.evaluate("S.version") == version
        page.click("#add-cancel")

        # review to the end, then export
        assert page.is_disabled("#export")
        page.click("#timecode")
        page.keyboard.press("End")
        frame_shown(page, before["input"]["frames"] - 1)
        page.click("#reviewed")
        page.wait_for_selector("#export:not([disabled])", timeout=T)
        page.click("#export")
        page.wait_for_selector("#download:not([hidden])", timeout=T)
        shot(page, tmp_path, "review-app-exported.png")
        out = tmp_path / "exported.mp4"
        out.write_bytes(get_bytes(f"{api}/output"))
        bundle = get_json(f"{api}/bundle")

        # bad uploads through the app: a clear error, no job
        n_jobs = len(get_json(f"{url}/api/jobs"))
        corrupt = tmp_path / "broken.mp4"
        corrupt.write_bytes(clip.read_bytes()[: 3000])
        page.set_input_files("#file", str(corrupt))
        page.wait_for_function("document.querySelector('#error').textContent.includes('upload refused')", timeout=T)
        text = tmp_path / "notes.txt"
        text.write_text("not media")
        page.set_input_files("#file", str(text))
        page.wait_for_function("document.querySelector('#error').textContent.includes('not a supported')", timeout=T)
        assert len(get_json(f"{url}/api/jobs")) == n_jobs
        assert errors == []

    plan = bundle["plan"]
    tracks = {t["id"]: t for t in plan["tracks"]}
    # the plan says what the reviewer did, and nothing else changed
    assert tracks[kept["id"]]["decision"] == "keep" and tracks[kept["id"]]["reason"] == "on stage, consented"
    assert missed["id"] not in tracks
    manual = [t for t in plan["tracks"] if t["source"] == "manual"]
    assert len(manual) == 1 and [f["index"] for f in manual[0]["frames"]] == list(range(first["index"], last["index"] + 1))
    untouched = [t for t in before["tracks"] if t["id"] not in (kept["id"], missed["id"])]
    assert all(tracks[t["id"]] == t for t in untouched)
    actions = [(h["who"], h["action"]) for h in bundle["history"]]
    for a in ("decision", "delete", "add", "reviewed to the end", "export requested"):
        assert ("ana", a) in actions, actions
    assert ("veil", "exported") in actions and bundle["job"]["reviewed_by"] == "ana"

    # the exported frames: kept face visible, manual region hidden over its range, the rest as before
    from veil.plan import parse_plan

    src, got = decode(clip), decode(out)
    assert len(got) == len(src) == 48
    final = parse_plan(plan)
    masks = anonymized_masks(final, (H, W))
    assert_visible(unchanged_diffs(got, src, tracks[kept["id"]]["frames"], masks))
    hidden = [region_diff(got[f["index"]], src[f["index"]], f["box"]) for f in manual[0]["frames"]]
    assert hidden[0] > 6 and hidden[-1] > 6 and np.mean(hidden) > 6  # the drawn face (flat regions blur to themselves)
    # the export is exactly the reviewed plan rendered (same frames as `veil render` gives)
    from veil.api import Anonymizer

    local = tmp_path / "local.mp4"
    Anonymizer.for_plan(final).render(clip, final, local)
    assert all(np.array_equal(a, b) for a, b in zip(decode(local), got))
    # everything else as before: where the untouched tracks are, the export is the one-pass output
    onepass = tmp_path / "onepass.mp4"
    Anonymizer().video(clip, onepass)
    ref = decode(onepass)
    same = [region_diff(got[f["index"]], ref[f["index"]], f["box"]) for t in untouched for f in t["frames"]]
    assert len(same) > 100 and float(np.median(same)) < 1.5, sorted(same)[-10:]


def test_review_image_keep_add_export(browser, astronaut, tmp_path):
    """An image job in the browser: keep the face, draw a missed box, export, check the pixels."""
    from PIL import Image

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(photo, quality=95)
    src = np.asarray(Image.open(photo).convert("RGB"))
    drawn = (300, 300, 400, 400)  # on the suit, where no face is
    with veil_server(tmp_path / "data") as url:
        page, errors = upload_and_open(browser, url, photo)
        api = f"{url}/api/jobs/{page.evaluate('S.job.id')}"
        before = get_json(f"{api}/plan")
        assert before["input"]["kind"] == "image"
        face = max(before["tracks"], key=lambda t: t["frames"][0]["score"])
        page.click(f'.track[data-id="{face["id"]}"] .toggle')
        page.fill("#reason", "consent on file")
        page.click("#reason-ok")
        page.wait_for_selector(f'.track.keep[data-id="{face["id"]}"]', timeout=T)
        page.click("#timecode")
        page.keyboard.press("d")
        draw(page, drawn, (before["input"]["width"], before["input"]["height"]))
        page.click("#add-apply")
        page.wait_for_selector(".track.manual", timeout=T)
        page.click("#reviewed")  # an image's one frame has been seen
        page.wait_for_selector("#export:not([disabled])", timeout=T)
        page.click("#export")
        page.wait_for_selector("#download:not([hidden])", timeout=T)
        out = tmp_path / "exported.jpg"
        out.write_bytes(get_bytes(f"{api}/output"))
        plan = get_json(f"{api}/plan")
        assert errors == []

    tracks = {t["id"]: t for t in plan["tracks"]}
    assert tracks[face["id"]]["decision"] == "keep" and tracks[face["id"]]["reason"] == "consent on file"
    (manual,) = [t for t in plan["tracks"] if t["source"] == "manual"]
    box = manual["frames"][0]["box"]
    assert max(abs(a - b) for a, b in zip(box, drawn)) < 6  # the box where it was drawn
    got = np.asarray(Image.open(out).convert("RGB"))
    assert got.shape == src.shape
    assert region_diff(got, src, face["frames"][0]["box"]) < 3  # the kept face: JPEG re-encoding only
    assert region_diff(got, src, drawn) > 5  # the drawn region is hidden
