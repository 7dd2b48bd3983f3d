"""Weak settings fail closed: a blur/pixelate strength below the measured floor is refused
unless ``allow_weak`` is given (then with a warning), and ``none``/``debug`` never count a
face as hidden. The floor is checked against behaviour on a real photo, not as a number.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from veil import Anonymizer
from veil.boxes import box_iou
from veil.cli.main import app
from veil.config import Config, DetectConfig, RenderConfig
from veil.errors import ConfigError
from veil.faces import Faces
from veil.report import ItemReport, RunReport

runner = CliRunner()
STRENGTH_FILTERS = ("blur", "pixelate")


def floor(name: str) -> float:
    return RenderConfig(filter=name).strength_floor


def one_line(res) -> str:
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.fixture
def photo(tmp_path, astronaut):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", STRENGTH_FILTERS)
def test_strength_below_the_floor_is_refused(name):
    assert 0 < floor(name) <= 1.0  # the default strength is above its own floor
    with pytest.raises(ConfigError) as exc:
        Config().updated(render={"filter": name, "strength": floor(name) / 2})
    msg = str(exc.value)
    assert "--strength" in msg and "--allow-weak" in msg and "render.strength" not in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="--strength"):  # the API refuses it before loading any model
        Anonymizer(filter=name, strength=0.1)
    ok = Config().updated(render={"filter": name, "strength": floor(name)})  # the floor itself is allowed
    assert not ok.render.weak
    weak = Config().updated(render={"filter": name, "strength": floor(name) / 2, "allow_weak": True})
    assert weak.render.weak and weak.render.allow_weak


@pytest.mark.parametrize("name", ["solid", "none", "debug"])
def test_strength_does_not_matter_for_other_filters(name):
    cfg = Config().updated(render={"filter": name, "strength": 0.05})
    assert cfg.render.strength_floor == 0 and not cfg.render.weak


def test_allow_weak_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="veil"):
        anon = Anonymizer(filter="blur", strength=floor("blur") / 2, allow_weak=True)
    assert anon.config.render.allow_weak and anon.report.as_dict()["manifest"]["settings"]["render"]["allow_weak"]
    assert any("weak anonymization" in r.getMessage() and "--strength" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="veil"):
        Anonymizer(filter="blur", allow_weak=True)  # allowed but not weak: no warning
    assert not [r for r in caplog.records if "weak" in r.getMessage()]


# -- CLI ------------------------------------------------------------------------------------
@pytest.mark.parametrize("filter_", STRENGTH_FILTERS)
def test_cli_refuses_weak_strength(photo, tmp_path, filter_):
    out = tmp_path / "o.png"
    res = runner.invoke(app, ["anonymize", str(photo), "-o", str(out), "--filter", filter_, "--strength", "0.1"])
    assert res.exit_code == 2
    line = one_line(res)
    assert "--strength 0.1" in line and "--allow-weak" in line and "render." not in line
    assert not out.exists()


def test_cli_allow_weak_runs_with_a_warning(photo, tmp_path, caplog):
    out = tmp_path / "o.png"
    with caplog.at_level(logging.WARNING, logger="veil"):
        res = runner.invoke(app, ["anonymize", str(photo), "-o", str(out), "--strength", "0.1", "--allow-weak", "-q"])
    assert res.exit_code == 0, res.output
    assert out.is_file()
    assert any("weak anonymization" in r.getMessage() for r in caplog.records)


def test_stream_refuses_weak_strength(tmp_path):
    res = runner.invoke(app, ["stream", "-", "-o", str(tmp_path / "o.ts"), "--strength", "0.1"], input=b"")
    assert res.exit_code == 2 and "--strength 0.1" in one_line(res)
    assert not (tmp_path / "o.ts").exists()


@pytest.mark.parametrize("filter_", ["none", "debug"])
def test_none_and_debug_do_not_count_faces_as_hidden(photo, tmp_path, filter_):
    report = tmp_path / "r.json"
    res = runner.invoke(app, ["anonymize", str(photo), "-o", str(tmp_path / "o.png"), "--filter", filter_,
                              "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert "does not anonymize" in res.output
    assert "1 face detections found, NOT hidden" in res.output and "detections hidden" not in res.output
    assert "file(s) anonymized" not in res.output
    rep = json.loads(report.read_text())
    m = rep["manifest"]
    assert m["faces_hidden"] is False
    assert m["totals"]["faces"] >= 1 and m["totals"]["anonymized"] == 0
    face = rep["items"][0]["frames"][0]["faces"][0]
    assert face["anonymized"] is False and "NOT hidden" in face["reason"]
    assert rep["items"][0]["counts"]["anonymized"] == 0


def test_anonymizing_filter_counts_faces_as_hidden(photo, tmp_path):
    report = tmp_path / "r.json"
    res = runner.invoke(app, ["anonymize", str(photo), "-o", str(tmp_path / "o.png"), "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert "1 file(s) anonymized (1 face detections hidden)" in res.output
    m = json.loads(report.read_text())["manifest"]
    assert m["faces_hidden"] is True and m["totals"]["anonymized"] == m["totals"]["faces"] >= 1


def test_item_report_of_a_non_hiding_run():
    run = RunReport(settings={}, model={}, hides=False)
    item = run.add(ItemReport(input="x.png", kind="image"))
    item.add_frame(0, Faces(xyxy=[[0, 0, 10, 10], [20, 20, 30, 30]], scores=[0.9, 0.8]))
    assert item.counts == {"frames": 1, "faces": 2, "anonymized": 0}
    assert run.totals["anonymized"] == 0 and run.totals["faces"] == 2
    hiding = RunReport(settings={}, model={}).add(ItemReport(input="x.png", kind="image"))
    hiding.add_frame(0, Faces(xyxy=[[0, 0, 10, 10]], scores=[0.9]))
    assert hiding.counts["anonymized"] == 1


# -- the floor against behaviour ------------------------------------------------------------
@pytest.mark.parametrize("name", STRENGTH_FILTERS)
def test_floor_hides_what_a_weak_filter_leaves_detectable(astronaut, name):
    """On a real photo, veil's own detector still finds the face after a weak filter (at the
    operating threshold) and no longer finds it at the floor or the default."""
    det = Anonymizer()  # balanced: the operating threshold and resolution users get
    threshold = DetectConfig().threshold
    face = det.detect(astronaut)
    assert len(face) == 1
    box = face.xyxy

    def best_score(strength: float) -> float:
        anon = Anonymizer(filter=name, strength=strength, allow_weak=True)
        found = det.detect(anon.frame(astronaut).frame, 0.01)
        near = box_iou(box, found.xyxy)[0] >= 0.3 if len(found) else np.zeros(0, bool)
        return float(found.scores[near].max()) if near.any() else 0.0

    assert best_score(0.1) >= threshold  # weak: still a face to veil itself
    assert best_score(floor(name)) < threshold  # the floor: no longer found
    assert best_score(1.0) < threshold


# -- the sweep and the floor rule in the privacy report (no data needed) ---------------------
def _variant_result(name, strength, matched, aligned, redetected, n=38):
    from veil.eval.privacy import PairResult, ReidResult
    from veil.eval.privacy_suite import Variant, VariantResult

    pairs = [PairResult(f"x{i}", f"y{i}", 0.5 if i < matched else 0.8, i < matched, 0.5 if i < aligned else 0.8,
                        i < aligned, 0.3, True, 0.5 if i < redetected else 0.0, i < redetected) for i in range(n)]
    label = "-" if strength is None else f"{strength:g}"
    return VariantResult(Variant(name or "none (original)", label, None if name is None else (lambda r, f: r), name,
                                 strength), ReidResult(pairs), 0.0)


def test_floor_rule_and_report(tmp_path):
    from veil.eval.privacy_report import SWEEP_FIGURE, build_report, strength_floors

    sweep = {0.1: (30, 31, 20), 0.2: (3, 2, 9), 0.3: (0, 1, 4), 0.4: (0, 0, 2), 0.5: (0, 0, 0), 0.6: (0, 0, 1),
             0.8: (0, 0, 0), 1.0: (0, 0, 0)}
    results = [_variant_result(None, None, 38, 38, 38)]
    results += [_variant_result("blur", s, *v) for s, v in sweep.items()]
    (f,) = strength_floors(results)
    # an aligned-attacker match at 0.3 counts; a re-detection at 0.6 pushes the floor past it
    assert (f.measured, f.failing, f.redetect_free, f.recommended) == (0.4, 0.3, 0.8, 0.8)
    assert f.enforced == floor("blur") and f.supported == (floor("blur") >= 0.8)
    doc = build_report(results, tmp_path, pairs_csv="p.csv", images="img", same_pairs=38)
    assert (tmp_path / SWEEP_FIGURE).is_file()
    section = next(s for s in doc.sections if s.title == "Strength floor")
    assert "from strength 0.4 up" in section.text and "Floor by the rule (one step above 0.4, and no re-detection): 0.8" in section.text
    assert doc.data["floors"][0]["recommended"] == 0.8
    # a filter re-identified even at its strongest strength gets no floor, and the report says so
    bad = [results[0], *(_variant_result("pixelate", s, 1, 0, 0) for s in (0.5, 1.0, 2.0))]
    (g,) = strength_floors(bad)
    assert g.measured is None and g.recommended is None and not g.supported
    doc = build_report(bad, tmp_path / "bad", pairs_csv="p.csv", images="img", same_pairs=38)
    assert "NOT supported" in next(s for s in doc.sections if s.title == "Strength floor").text
