import json

import pytest

from pipeline.files import replacing, write_json


def test_failed_write_keeps_the_earlier_output_and_leaves_no_temp(tmp_path):
    out = tmp_path / "sub" / "metrics.json"
    write_json(out, {"auroc": 0.9})
    with pytest.raises(RuntimeError):
        with replacing(out) as tmp:
            tmp.write_text('{"auroc": ')  # half written
            raise RuntimeError("crash mid-write")
    assert json.loads(out.read_text()) == {"auroc": 0.9}
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json"]


def test_strict_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"auroc": float("nan")}, allow_nan=False)
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.json.tmp").exists()
