"""The model registry: catalogue, sha256 verification, evaluation results attached from a real
``veil eval widerface`` run, and the release gate with its audit record."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from helpers import run
from veil.audit import AuditLog
from veil.errors import ConfigError
from veil.models import MODELS
from veil.models.catalog import ModelEntry, catalog, verify_entry
from veil.models.gates import parse_requirement, report_metrics
from veil.models.records import ModelRecords


@pytest.fixture(scope="module")
def wider_report(tmp_path_factory, wider_dev) -> Path:
    """A real (small) WIDER FACE evaluation of the shipped CenterFace."""
    out = tmp_path_factory.mktemp("wider")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_HOME", str(tmp_path_factory.mktemp("eval_home")))
        res = run("eval", "widerface", wider_dev, "--limit", "6", "--bootstrap", "20", "--examples", "0",
                  "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out / "report.json"


def test_catalogue_lists_every_model_with_its_facts():
    models = catalog()
    assert set(MODELS) <= set(models)
    assert {"dlib_face_recognition_resnet_model_v1", "midas-small"} <= set(models)
    for e in models.values():
        assert e.license and e.version and e.kind in ("detector", "embedder", "depth")
        assert e.source != "not recorded" and e.intended_use != "not recorded", e.name
    res = run("models", "list")
    assert res.exit_code == 0 and "centerface" in res.output and "candidate" in res.output
    res = run("models", "show", "centerface")
    assert res.exit_code == 0 and "intended_use:" in res.output and MODELS["centerface"].sha256 in res.output


def test_verify_catches_a_changed_model_file(tmp_path):
    src = MODELS["centerface"].locate()
    copy = tmp_path / "centerface.onnx"
    shutil.copy(src, copy)
    e = ModelEntry("copy", "detector", "v", MODELS["centerface"].sha256, "MIT", "s", "u", locate=lambda: copy)
    assert verify_entry(e) == ("ok", MODELS["centerface"].sha256)
    data = bytearray(copy.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    state, digest = verify_entry(e)
    assert state == "mismatch" and digest != MODELS["centerface"].sha256
    res = run("models", "verify", "centerface")
    assert res.exit_code == 0 and "centerface: ok" in res.output
    ev = AuditLog().events(kinds=["model.verify"])[-1]
    assert ev.body["models"]["centerface"]["state"] == "ok"


def test_release_gate_refuses_then_promotes_and_records_both(wider_report):
    metrics = report_metrics(json.loads(wider_report.read_text()))[1]
    hard = metrics["wider.hard"]
    res = run("models", "attach", "centerface", wider_report)
    assert res.exit_code == 0, res.output
    too_high = f"wider.hard>={min(1.0, hard + 0.05):.3f}" if hard < 0.999 else "wider.hard>1"
    res = run("models", "promote", "centerface", "--require", too_high, "--require", "wider.easy>=0")
    assert res.exit_code == 1 and "REFUSED" in res.output and f"measured {hard:.4g}" in res.output
    assert ModelRecords().status("centerface", MODELS["centerface"].sha256) == "refused"
    res = run("models", "promote", "centerface", "--require", f"wider.hard>={hard - 0.01:.3f}",
              "--require", "fairness.skin_spread<=100")
    assert res.exit_code == 0 and "promoted" in res.output, res.output
    assert ModelRecords().status("centerface", MODELS["centerface"].sha256) == "promoted"
    log = AuditLog()
    assert log.verify().ok
    evs = log.events(kinds=["model."])
    assert [e.kind for e in evs] == ["model.evaluation", "model.promote", "model.promote"]
    assert evs[0].body["metrics"]["wider.hard"] == hard and evs[0].body["model_named_in_report"]
    assert [e.body["decision"] for e in evs[1:]] == ["refused", "promoted"]
    assert evs[1].body["missed"] and evs[1].body["measured"]["wider.hard"] == hard
    res = run("models", "show", "centerface")
    assert "status: promoted" in res.output and "refused" in res.output and "widerface" in res.output


def test_gate_refuses_without_evidence_and_names_what_is_missing():
    res = run("models", "promote", "centerface", "--require", "wider.hard>=0.5")
    assert res.exit_code == 1 and "no attached evaluation gives wider.hard" in res.output
    assert AuditLog().events(kinds=["model.promote"])[-1].body["decision"] == "refused"


def test_attach_refuses_a_report_of_another_model_file(wider_report, tmp_path):
    doc = json.loads(wider_report.read_text())
    doc["data"]["detector"]["model_sha256"] = "ab" * 32
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    res = run("models", "attach", "centerface", other)
    assert res.exit_code == 5 and "not centerface" in res.output
    assert ModelRecords().evaluations("centerface") == []


@pytest.mark.parametrize("text, expected", [
    ("wider.hard>=0.80", ("wider.hard", ">=", 0.8)),
    ("fairness.skin_spread <= 3", ("fairness.skin_spread", "<=", 3.0)),
    ("conditions.dark@0.3.recall>0.5", ("conditions.dark@0.3.recall", ">", 0.5)),
    ("wider.hard=>0.8", ConfigError),
    ("wider.hard>=high", ConfigError),
    ("", ConfigError),
])
def test_parse_requirement(text, expected):
    if isinstance(expected, type):
        with pytest.raises(expected):
            parse_requirement(text)
    else:
        r = parse_requirement(text)
        assert (r.metric, r.op, r.value) == expected


def test_bad_requirement_is_a_usage_error():
    res = run("models", "promote", "centerface", "--require", "hard is good")
    assert res.exit_code == 2 and "expected METRIC OP NUMBER" in res.output


def test_conditions_report_metrics():
    rep = {"data": {"conditions": {"dark": {"recall": 0.9, "disparity": {"spread_points": 4.0}},
                                   "blur": {"recall": 0.8, "disparity": {"spread_points": 2.5}},
                                   "clean": {"recall": 0.99, "disparity": None}}}}
    kind, m = report_metrics(rep)
    assert kind == "conditions" and m["conditions.dark.recall"] == 0.9 and m["fairness.conditions_spread"] == 4.0
    assert "conditions.clean.spread" not in m


# --- the optional MLflow mirror (veil[mlflow]): a local SQLite store under the test's VEIL_HOME ---

def _mlflow_client(uri=None):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from veil.models.mlflow_sync import client

    return client(uri)


def test_mlflow_log_writes_a_run_with_the_reports_metrics_params_and_files(wider_report, tmp_path):
    uri = f"sqlite:///{tmp_path / 'team.db'}"  # a store of one's own: artifacts go next to it
    c = _mlflow_client(uri)
    doc = json.loads(wider_report.read_text())
    gate = report_metrics(doc)[1]
    res = run("models", "mlflow-log", wider_report, "--tracking-uri", uri)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "mlflow-artifacts").is_dir() and not (Path(os.environ["VEIL_HOME"]) / "mlflow.db").exists()
    run_id = AuditLog().events(kinds=["model.mlflow_run"])[-1].body["run_id"]
    assert run_id in res.output
    r = c.get_run(run_id)
    assert r.info.status == "FINISHED" and r.data.tags["veil.kind"] == "widerface"
    m = r.data.metrics
    for name, value in gate.items():  # the release-gate names, as `veil models promote --require` sees them
        assert m[name] == pytest.approx(value, rel=1e-12), name
    ap = doc["data"]["ap"]["hard"]  # and the report's own numbers under their dotted paths
    assert m["ap.hard.ci_low"] == pytest.approx(ap["ci_low"]) and m["ap.hard.faces"] == ap["faces"]
    assert m["images"] == doc["data"]["images"] and not any(k.startswith(("pr.", "settings.")) for k in m)
    p = r.data.params
    assert p["model_sha256"] == MODELS["centerface"].sha256 == r.data.tags["veil.model_sha256"]
    assert p["preset"] == doc["data"]["preset"] and p["settings.threshold"] == str(doc["data"]["settings"]["threshold"])
    files = {f.path for f in c.list_artifacts(run_id)}
    assert {"report.json", "report.md", "report.html"} <= files
    figures = {f.path for f in c.list_artifacts(run_id, "figures")}
    assert figures and figures == {f"figures/{p.name}" for p in (wider_report.parent / "figures").iterdir()}


def test_promote_with_mlflow_registers_the_file_once_and_moves_the_alias(wider_report):
    c = _mlflow_client()
    sha = MODELS["centerface"].sha256
    assert run("models", "attach", "centerface", wider_report).exit_code == 0
    res = run("models", "promote", "centerface", "--require", "wider.hard>1", "--mlflow")
    assert res.exit_code == 1 and "REFUSED" in res.output
    assert c.search_registered_models() == []  # a refused model is not registered
    assert c.tracking_uri == f"sqlite:///{Path(os.environ['VEIL_HOME']) / 'mlflow.db'}"  # the default store
    assert run("models", "mlflow-log", wider_report).exit_code == 0
    run_id = AuditLog().events(kinds=["model.mlflow_run"])[-1].body["run_id"]
    res = run("models", "promote", "centerface", "--require", "wider.easy>=0", "--mlflow", "--mlflow-alias", "candidate")
    assert res.exit_code == 0 and "MLflow model version 1 is now 'candidate'" in res.output, res.output
    mv = c.get_model_version_by_alias("centerface", "candidate")
    assert str(mv.version) == "1" and mv.tags["veil.model_sha256"] == sha and mv.run_id == run_id
    assert mv.source.endswith("/centerface.onnx")
    res = run("models", "promote", "centerface", "--require", "wider.easy>=0", "--mlflow")
    assert res.exit_code == 0, res.output
    versions = c.search_model_versions("name = 'centerface'")
    assert [str(v.version) for v in versions] == ["1"]  # the same file is not registered twice
    assert set(c.get_registered_model("centerface").aliases) == {"candidate", "production"}
    evs = [e for e in AuditLog().events(kinds=["model.mlflow"]) if e.kind == "model.mlflow"]
    assert [(e.body["alias"], e.body["version"], e.body["model_sha256"]) for e in evs] == \
        [("candidate", 1, sha), ("production", 1, sha)]


def test_mlflow_missing_is_one_line_and_promote_decides_nothing(wider_report, monkeypatch):
    for mod in ("mlflow", "mlflow.tracking", "mlflow.exceptions"):
        monkeypatch.setitem(sys.modules, mod, None)  # `import mlflow` now raises ImportError
    res = run("models", "mlflow-log", wider_report)
    assert res.exit_code == 2 and "pip install 'veil[mlflow]'" in res.output and "Traceback" not in res.output
    assert run("models", "attach", "centerface", wider_report).exit_code == 0
    res = run("models", "promote", "centerface", "--require", "wider.easy>=0", "--mlflow")
    assert res.exit_code == 2 and "pip install 'veil[mlflow]'" in res.output
    assert ModelRecords().decisions("centerface") == [] and AuditLog().events(kinds=["model.promote"]) == []


def test_mlflow_log_refuses_a_file_that_is_not_an_evaluation_report(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps({"data": {"images": 3}}))
    res = run("models", "mlflow-log", bad)
    assert res.exit_code == 3 and "not a 'veil eval widerface' or 'veil eval conditions' report" in res.output
    assert not (Path(os.environ["VEIL_HOME"]) / "mlflow.db").exists()


def test_flatten_numbers_keeps_finite_numbers_under_mlflow_safe_names():
    from veil.models.mlflow_sync import flatten_numbers

    got = flatten_numbers({"a": {"b": 1, "c": [1, 2], "d": True, "e": float("nan"), "dark@0.3": {"recall": 0.5}},
                           "n": None, "s": "x"})
    assert got == {"a.b": 1.0, "a.dark_0.3.recall": 0.5}
