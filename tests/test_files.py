import json

import pytest

from pipeline.core.files import replacing, write_json


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


def test_outputs_get_the_usual_permissions_and_safetensors_canonical_bytes(tmp_path):
    """safetensors writes 0600 and orders its header keys differently from run to run."""
    import os
    import stat

    import torch
    from safetensors.torch import load_file, save

    from pipeline.core.files import canonical_safetensors, replacing

    tensors = {"b.weight": torch.arange(6.0).view(2, 3), "a.bias": torch.ones(3)}
    meta = {f"k{i}": str(i) for i in range(8)}
    outs = set()
    for i in range(6):
        target = tmp_path / f"a{i}.safetensors"
        with replacing(target) as tmp:
            from safetensors.torch import save_file

            save_file(tensors, str(tmp), metadata=meta)  # the library's own writer: mode 0600
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()
        outs.add(canonical_safetensors(save(tensors, metadata=meta)))
        back = load_file(str(target))
        assert torch.equal(back["b.weight"], tensors["b.weight"])
    assert len(outs) == 1
    path = tmp_path / "canonical.safetensors"
    path.write_bytes(outs.pop())
    assert torch.equal(load_file(str(path))["a.bias"], tensors["a.bias"])


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
