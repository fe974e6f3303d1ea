"""tt.save/tt.load (safetensors) and training checkpoints: round trips of every dtype, interoperability
with the safetensors package, atomic writes under simulated crashes, exact resume, and hostile files.
"""
import json
import os

import numpy as np
import pytest
import safetensors
import safetensors.numpy as stnp
from hypothesis import given, strategies as st

import tinytensor as tt
import tinytensor.io as tio
import tinytensor.nn.functional as F
from tinytensor import nn, optim
from tinytensor.optim.lr_scheduler import WarmupCosineLR

DTYPES = [tt.float64, tt.float32, tt.float16, tt.bfloat16, tt.int64, tt.int32, tt.int16, tt.int8, tt.uint8, tt.bool]
rng = np.random.default_rng(0)


def _values(dtype, shape):
    a = rng.normal(size=shape) * 50
    return (a > 0) if dtype is tt.bool else a.astype(dtype.np)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_round_trip_every_dtype(tmp_path, dtype):
    tensors = {"matrix": tt.tensor(_values(dtype, (3, 5)), dtype=dtype), "scalar": tt.tensor(_values(dtype, ())),
               "empty": tt.zeros(0, 4, dtype=dtype),
               "view": tt.tensor(_values(dtype, (4, 6)), dtype=dtype)[::2, 1::2].t()}  # a strided view
    path = tmp_path / "x.safetensors"
    tt.save(tensors, path)
    back = tt.load(path)
    assert list(back) == ["matrix", "scalar", "empty", "view"] or set(back) == set(tensors)
    for name, t in tensors.items():
        assert back[name].dtype is t.dtype and back[name].shape == t.shape
        assert np.ascontiguousarray(t.numpy()).tobytes() == back[name].numpy().tobytes()  # bit-exact
    back["matrix"][0, 0] = 1  # loaded tensors own writable memory
    if dtype is not tt.bfloat16:  # files are readable by the safetensors package itself
        theirs = stnp.load_file(str(path))
        np.testing.assert_array_equal(theirs["view"], tensors["view"].numpy())
        assert theirs["matrix"].dtype == dtype.np
    else:
        raw = dict(safetensors.deserialize(path.read_bytes()))
        assert raw["matrix"]["dtype"] == "BF16" and bytes(raw["matrix"]["data"]) == tensors["matrix"].numpy().tobytes()


def test_reads_files_written_by_safetensors_and_metadata(tmp_path):
    arrays = {"w": rng.normal(size=(2, 3)).astype(np.float32), "ids": np.arange(4, dtype=np.int64)}
    stnp.save_file(arrays, str(tmp_path / "theirs.safetensors"))
    back = tt.load(tmp_path / "theirs.safetensors")
    np.testing.assert_array_equal(back["w"].numpy(), arrays["w"])
    assert back["ids"].dtype is tt.int64 and back["ids"].tolist() == [0, 1, 2, 3]
    tt.save({"a": tt.ones(2)}, tmp_path / "m.safetensors", metadata={"format": "pt", "step": "3"})
    with safetensors.safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "step": "3"}
    with pytest.raises(TypeError, match="str -> Tensor"):
        tt.save({"a": np.ones(2)}, tmp_path / "bad.safetensors")
    with pytest.raises(TypeError, match="metadata"):
        tt.save({"a": tt.ones(2)}, tmp_path / "bad.safetensors", metadata={"k": 1})
    assert not (tmp_path / "bad.safetensors").exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    tt.save({"a": tt.ones(3)}, path)

    def crash(*args):
        raise OSError("simulated crash before the rename")
    monkeypatch.setattr(tio.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        tt.save({"a": tt.zeros(3), "b": tt.ones(1)}, path)
    assert tt.load(path)["a"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["w.safetensors"]  # the temp file was removed


# ---- hostile and corrupt files -------------------------------------------------------------------

def _file(header, data=b"", raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return len(h).to_bytes(8, "little") + h + data


ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
HOSTILE = [
    (b"", "too short"),
    (b"\x05\x00", "too short"),
    ((10 ** 12).to_bytes(8, "little") + b"{}", "exceeds"),
    (_file(None, raw_header=b'{"a": 1}')[:12], "truncated"),
    (_file(None, raw_header=b"\xff\xfe{}"), "UTF-8 JSON"),
    (_file(None, raw_header=b"[" * 100000), "UTF-8 JSON"),
    (_file([1, 2]), "not an object"),
    (_file(None, raw_header=b'{"a": ' + json.dumps(ENTRY).encode() + b', "a": ' + json.dumps(ENTRY).encode() + b"}",
           data=b"\0" * 8), "duplicate"),
    (_file({"a": dict(ENTRY, dtype="F8_E4M3")}, b"\0" * 8), "unsupported dtype"),
    (_file({"a": dict(ENTRY, shape=[-2])}, b"\0" * 8), "invalid shape"),
    (_file({"a": dict(ENTRY, shape=[True, 2])}, b"\0" * 8), "invalid shape"),
    (_file({"a": dict(ENTRY, data_offsets=[0, 4])}, b"\0" * 8), "needs 8 bytes"),
    (_file({"a": dict(ENTRY, data_offsets=[8, 0])}, b"\0" * 8), "invalid data_offsets"),
    (_file({"a": ENTRY, "b": ENTRY}, b"\0" * 8), "overlap or hole"),
    (_file({"a": ENTRY}, b"\0" * 12), "trailing bytes"),
    (_file({"a": ENTRY}, b"\0" * 5), "truncated"),
    (_file({"a": dict(ENTRY, extra=1)}, b"\0" * 8), "exactly dtype"),
    (_file({"__metadata__": {"k": 1}}), "__metadata__"),
    (_file({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02"), "BOOL"),
]


@pytest.mark.parametrize("blob,message", HOSTILE, ids=[f"{i}-{m}" for i, (_, m) in enumerate(HOSTILE)])
def test_hostile_files_raise_value_error(tmp_path, blob, message):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ValueError) as e:
        tt.load(path)
    assert str(path) in str(e.value) and message in str(e.value)


GOOD = None


def _good_file():
    global GOOD
    if GOOD is None:
        GOOD = stnp.save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False]),
                          "c": np.arange(3, dtype=np.int64)}, metadata={"k": "v"})
    return GOOD


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2, 100) | st.text(max_size=4)
                           | st.sampled_from(["F32", "BOOL", "I64", "BF16"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["a", "dtype", "shape", "data_offsets", "__metadata__"]), inner,
                               max_size=4), max_leaves=12)


@given(st.data())
def test_fuzzed_headers_give_value_errors(tmp_path_factory, data):
    good = _good_file()
    n = int.from_bytes(good[:8], "little")
    mode = data.draw(st.sampled_from(["bytes", "truncate", "json", "length"]))
    if mode == "bytes":  # overwrite a few bytes anywhere in the length prefix or the header
        blob = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, 8 + n - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif mode == "truncate":
        blob = good[:data.draw(st.integers(0, len(good) - 1))]
    elif mode == "json":
        blob = _file(data.draw(json_values), good[8 + n:])
    else:
        blob = data.draw(st.binary(min_size=8, max_size=8)) + good[8:]
    path = tmp_path_factory.mktemp("fuzz") / "fuzzed.safetensors"
    path.write_bytes(blob)
    try:
        out = tt.load(path)
    except ValueError as e:
        assert str(path) in str(e)
    else:  # a mutation that kept the file valid (a changed name, metadata, ...): the data is consistent
        assert sum(t.nbytes for t in out.values()) == len(blob) - 8 - int.from_bytes(blob[:8], "little")


# ---- checkpoints -----------------------------------------------------------------------------------

def _setup(seed):
    tt.manual_seed(seed)
    model = nn.Sequential(nn.Embedding(11, 6), nn.Flatten(), nn.Linear(18, 16), nn.BatchNorm1d(16), nn.GELU(),
                          nn.Dropout(0.2), nn.Linear(16, 11))
    opt = optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.1, amsgrad=True)
    return model, opt, WarmupCosineLR(opt, warmup_steps=2, total_steps=8, min_lr_ratio=0.1)


def _train(model, opt, sched, data, steps):
    losses = []
    for _ in range(steps):
        x, y = tt.tensor(data.integers(0, 11, (8, 3))), tt.tensor(data.integers(0, 11, 8))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_is_exact(tmp_path):
    model, opt, sched = _setup(0)
    straight = _train(model, opt, sched, np.random.default_rng(1), 8)
    final = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, sched = _setup(0)
    data = np.random.default_rng(1)
    first = _train(model, opt, sched, data, 4)
    tt.save_checkpoint(tmp_path / "ckpt", model=model, optimizer=opt, scheduler=sched, step=4,
                       rng={"tinytensor": tt.default_generator, "data": data}, data_position={"epoch": 0, "batch": 4},
                       extra={"note": "halfway"})
    del model, opt, sched
    model, opt, sched = _setup(99)  # a fresh process: other weights, other random state
    data = np.random.default_rng(12345)
    info = tt.load_checkpoint(tmp_path / "ckpt", model=model, optimizer=opt, scheduler=sched,
                              rng={"tinytensor": tt.default_generator, "data": data})
    assert info["step"] == 4 and info["data_position"] == {"epoch": 0, "batch": 4}
    assert info["extra"] == {"note": "halfway"}
    assert sched.last_epoch == 4 and opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    rest = _train(model, opt, sched, data, 4)
    assert first + rest == straight  # bit-identical losses, dropout masks and data included
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), final[k], err_msg=k)


def _ckpt_files(d):
    return sorted(os.listdir(d))


def test_checkpoint_survives_a_crash_at_the_commit(tmp_path, monkeypatch):
    d = tmp_path / "ckpt"
    model = nn.Linear(3, 2)
    tt.save_checkpoint(d, model=model, step=1)
    saved = model.weight.detach().numpy().copy()
    with tt.no_grad():
        model.weight.add_(1.0)
    real_replace = os.replace

    def crash_on_commit(src, dst):
        if str(dst).endswith("checkpoint.json"):
            raise OSError("simulated crash at the commit")
        real_replace(src, dst)
    monkeypatch.setattr(tio.os, "replace", crash_on_commit)
    with pytest.raises(OSError, match="simulated"):
        tt.save_checkpoint(d, model=model, step=2)
    monkeypatch.setattr(tio.os, "replace", real_replace)
    assert len([f for f in _ckpt_files(d) if f.startswith("tensors-")]) == 2  # the new one is not committed
    fresh = nn.Linear(3, 2)
    assert tt.load_checkpoint(d, model=fresh)["step"] == 1
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), saved)
    tt.save_checkpoint(d, model=model, step=3)  # the next save removes the orphan
    assert len(_ckpt_files(d)) == 2 and tt.load_checkpoint(d, model=fresh)["step"] == 3
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), saved + 1)


def test_checkpoint_survives_a_crash_mid_write(tmp_path, monkeypatch):
    d = tmp_path / "ckpt"
    model = nn.Linear(2, 2)
    tt.save_checkpoint(d, model=model, step=7)
    (d / ".tensors-0123456789abcdef.safetensors.x1y2.tmp").write_bytes(b"\x10\x00partial")  # a killed writer
    before = _ckpt_files(d)

    def crash(fd):
        raise OSError("simulated power loss during fsync")
    monkeypatch.setattr(tio.os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        tt.save_checkpoint(d, model=nn.Linear(2, 2), step=8)
    monkeypatch.undo()
    assert _ckpt_files(d) == before  # the interrupted write left nothing behind
    fresh = nn.Linear(2, 2)
    assert tt.load_checkpoint(d, model=fresh)["step"] == 7
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), model.weight.detach().numpy())
    tt.save_checkpoint(d, model=model, step=9)
    assert not any(f.endswith(".tmp") for f in _ckpt_files(d))


def test_checkpoint_rejects_unserialisable_extra_without_writing(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        tt.save_checkpoint(tmp_path / "c", model=nn.Linear(1, 1), extra={"fn": print})
    assert not (tmp_path / "c").exists()


def test_checkpoint_rng_kinds_round_trip(tmp_path):
    import random
    py, npg = random.Random(5), np.random.default_rng(5)
    tt.manual_seed(5)
    tt.save_checkpoint(tmp_path / "c", rng={"py": py, "np": npg, "tinytensor": tt.default_generator})
    expected = (py.random(), npg.random(), tt.rand(1).item())
    tt.manual_seed(0)
    tt.load_checkpoint(tmp_path / "c", rng={"py": py, "np": npg, "tinytensor": tt.default_generator})
    assert (py.random(), npg.random(), tt.rand(1).item()) == expected
    with pytest.raises(ValueError, match="no rng state named 'missing'"):
        tt.load_checkpoint(tmp_path / "c", rng={"missing": py})


def _corrupt_json(d, change):
    doc = json.loads((d / "checkpoint.json").read_text())
    change(doc)
    (d / "checkpoint.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("corruption,fragment", [
    (lambda d: (d / "checkpoint.json").write_bytes(b"{not json"), "checkpoint.json: not a valid checkpoint"),
    (lambda d: _corrupt_json(d, lambda doc: doc.update(tensors_file="../../etc/passwd")), "invalid tensors_file"),
    (lambda d: _corrupt_json(d, lambda doc: doc.update(format="other")), "not a tinytensor checkpoint"),
    (lambda d: _corrupt_json(d, lambda doc: doc["state"]["model"].update(weight={"__tensor__": "nope"})),
     "refers to tensor 'nope'"),
    (lambda d: _corrupt_json(d, lambda doc: doc["state"]["rng"]["tinytensor"].update(state={"x": 1})),
     "bad rng state"),
    (lambda d: [f for f in d.iterdir() if f.name.startswith("tensors-")][0].write_bytes(b"\x08" + b"\0" * 20),
     "SHA-256"),
])
def test_corrupt_checkpoints_raise_value_error(tmp_path, corruption, fragment):
    d = tmp_path / "ckpt"
    tt.save_checkpoint(d, model=nn.Linear(2, 1), step=1)
    corruption(d)
    with pytest.raises(ValueError, match=fragment) as e:
        tt.load_checkpoint(d, model=nn.Linear(2, 1))
    assert str(d) in str(e.value)
