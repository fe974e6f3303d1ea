"""Inputs validated at the door (issue 21): tokenizer files, from_pretrained configs, token shards,
training checkpoints and the permissions of written files. Each bad input gives a ValueError naming
the file and what is wrong, and nothing is half-loaded or half-written.
"""
import json
import os

import pytest

from tinytensor.tokenizer import GPT2Tokenizer, RegexTokenizer, Tokenizer
from tinytensor.tokenizer.files import to_hf_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----- tokenizer files -----

GOOD_BPE = ["tinytensor-bpe v1", "class RegexTokenizer", 'pattern "\\\\S+|\\\\s+"', "bytes identity",
            "specials 1", '258 "<|endoftext|>"', "merges 2", "104 105 256", "256 33 257"]


@pytest.mark.parametrize("line, replacement, message", [
    (6, '2147483648 "<|endoftext|>"', r"id 2147483648 is not an integer in \[0, 2147483647\]"),
    (9, "256 33 2147483648", r"id 2147483648 is not an integer in \[0, 2147483647\]"),
    (4, "bytes " + " ".join(map(str, [2**31, *range(1, 256)])), r"integers in \[0, 2147483647\]"),
    (6, '99999999 "<|endoftext|>"', "id 99999999 is beyond the vocabulary: 259 tokens"),
    (9, "256 33 100000", "id 100000 is beyond the vocabulary"),
    (6, '258 ""', "non-empty string"),
    (6, "258 7", "non-empty string"),
])
def test_tinytensor_bpe_ids_and_specials(tmp_path, line, replacement, message):
    lines = list(GOOD_BPE)
    lines[line - 1] = replacement
    path = tmp_path / "bad.bpe"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"bad.bpe:{line}: .*{message}"):
        Tokenizer.load(path)
    assert os.listdir(tmp_path) == ["bad.bpe"]


def test_tinytensor_bpe_duplicate_special(tmp_path):
    lines = GOOD_BPE[:4] + ["specials 2", '258 "<|a|>"', '259 "<|a|>"'] + GOOD_BPE[6:]
    (tmp_path / "dup.bpe").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dup.bpe:7: the special token '<|a|>' appears twice"):
        Tokenizer.load(tmp_path / "dup.bpe")


def _hf_file(tmp_path, added):
    tok = RegexTokenizer(special_tokens=["<|endoftext|>"])
    tok.train("hi hi hi there there", 260, special_tokens=["<|endoftext|>"])
    data = to_hf_json(tok)
    data["added_tokens"] = added
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, tok.vocab_size


@pytest.mark.parametrize("added, message", [
    ([{"id": -1, "content": "<|a|>"}], r"added_tokens\[0\]: special token '<\|a\|>': id -1 is not an integer"),
    ([{"id": 2**31, "content": "<|a|>"}], r"added_tokens\[0\]: .*id 2147483648 is not an integer"),
    ([{"id": True, "content": "<|a|>"}], r"added_tokens\[0\]: .*id True is not an integer"),
    ([{"id": 259, "content": ""}], r"added_tokens\[0\]: a special token must be a non-empty string"),
    ([{"id": 259, "content": "<|a|>"}, {"id": 259, "content": "<|b|>"}], r"added_tokens\[1\]: .*id 259 is already"),
    ([{"id": 259, "content": "<|a|>"}, {"id": 260, "content": "<|a|>"}], r"added_tokens\[1\]: .* appears twice"),
    ([{"id": 10**6, "content": "<|a|>"}], "model.vocab: id 1000000 is beyond the vocabulary"),
])
def test_hf_json_ids_and_specials(tmp_path, added, message):
    path, _ = _hf_file(tmp_path, added)
    with pytest.raises(ValueError, match=f"tokenizer.json: {message}"):
        Tokenizer.load_hf(path)


def test_hf_json_good_specials_load(tmp_path):
    path, _ = _hf_file(tmp_path, [{"id": 259, "content": "<|a|>"}])
    assert Tokenizer.load_hf(path).special_tokens == {"<|a|>": 259}


def test_gpt2_encoder_ids(tmp_path):
    encoder = tmp_path / "encoder.json"
    merges = os.path.join(ROOT, "examples", "data", "gpt2", "vocab.bpe")
    with open(os.path.join(ROOT, "examples", "data", "gpt2", "encoder.json"), encoding="utf-8") as f:
        good = json.load(f)
    for bad, message in [(2**31, "ids in \\[0, 2147483647\\]"), (10**7, "id 10000000 is beyond the vocabulary")]:
        encoder.write_text(json.dumps({**good, "<|endoftext|>": bad}), encoding="utf-8")
        with pytest.raises(ValueError, match=f"encoder.json: .*{message}"):
            GPT2Tokenizer.from_files(encoder, merges)


# ----- from_pretrained: config.json against the weights file's header -----

def _tiny_gpt_dir(tmp_path):
    import tinytensor as tt
    from models.gpt2 import GPT, GPTConfig
    tt.manual_seed(0)
    GPT(GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8)).save_pretrained(str(tmp_path))
    with open(tmp_path / "config.json", encoding="utf-8") as f:
        return json.load(f)


def _write_config(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")


def test_from_pretrained_checks_header_before_allocating(tmp_path, monkeypatch):
    from models.gpt2 import GPT
    config = _tiny_gpt_dir(tmp_path)
    built = []
    monkeypatch.setattr(GPT, "__init__", lambda self, c: built.append(c) or (_ for _ in ()).throw(AssertionError))
    for key, value in [("vocab_size", 1_000_000), ("n_positions", 9), ("n_layer", 2), ("n_embd", 16)]:
        _write_config(tmp_path, {**config, key: value})
        with pytest.raises(ValueError, match="model.safetensors: .*(has shape|missing tensors)"):
            GPT.from_pretrained(str(tmp_path))
    assert built == []     # the model was never built: nothing allocated


@pytest.mark.parametrize("key, value, message", [
    ("vocab_size", 3e7, r"vocab_size must be an integer in \[1, 16777216\], got 30000000.0"),
    ("vocab_size", 2**30, r"vocab_size must be an integer in \[1, 16777216\]"),
    ("n_head", 0, "n_head must be an integer"),
    ("n_layer", -1, "n_layer must be an integer"),
    ("n_embd", True, "n_embd must be an integer"),
    ("n_head", 3, "n_embd 8 is not a multiple of n_head 3"),
    ("n_positions", None, "has no 'n_positions'"),
])
def test_from_pretrained_rejects_bad_sizes(tmp_path, key, value, message):
    from models.gpt2 import GPT
    config = _tiny_gpt_dir(tmp_path)
    config[key] = value
    config.pop("n_ctx")
    _write_config(tmp_path, config)
    with pytest.raises(ValueError, match=f"config.json: {message}|config.json {message}"):
        GPT.from_pretrained(str(tmp_path))


def test_from_pretrained_still_loads(tmp_path):
    from models.gpt2 import GPT
    config = _tiny_gpt_dir(tmp_path)
    assert GPT.from_pretrained(str(tmp_path)).config.vocab_size == config["vocab_size"]
    for name in sorted(os.listdir(os.path.join(ROOT, "examples", "checkpoints"))):
        folder = os.path.join(ROOT, "examples", "checkpoints", name)
        if os.path.exists(os.path.join(folder, "config.json")):
            GPT.from_pretrained(folder)


# ----- token shards: index.json, docs.npy and shard paths -----

def _dataset(tmp_path):
    from tinytensor.data import prepare_shards
    tok = RegexTokenizer(special_tokens=["<|endoftext|>"])
    tok.train("once upon a time there was a cat " * 20, 270, special_tokens=["<|endoftext|>"])
    docs = [f"story {i}: once upon a time there was a cat" for i in range(12)]
    prepare_shards(docs, tok, str(tmp_path), val_fraction=0.25, shard_tokens=60, progress=False)
    with open(tmp_path / "index.json", encoding="utf-8") as f:
        return json.load(f)


def _edit_index(tmp_path, index, edit):
    index = json.loads(json.dumps(index))
    edit(index)
    (tmp_path / "index.json").write_text(json.dumps(index), encoding="utf-8")


def _shard0(i):
    return i["splits"]["train"]["shards"][0]


@pytest.mark.parametrize("edit, message", [
    (lambda i: i.update(splits=[]), "'splits' must be an object"),
    (lambda i: i["splits"].update(train={"shards": 3}), "splits.train must be an object with a 'shards' list"),
    (lambda i: _shard0(i).pop("docs"), r"splits.train.shards\[0\] must have"),
    (lambda i: _shard0(i).update(tokens=-2), r"splits.train.shards\[0\] must have"),
    (lambda i: i.update(bos=70000), "bos in"),
    (lambda i: i.update(vocab_size="big"), "vocab_size in"),
    (lambda i: _shard0(i).update(file="/etc/passwd"), r"shards\[0\].file must be a file name inside"),
    (lambda i: _shard0(i).update(file="../outside.bin"), r"shards\[0\].file must be a file name inside"),
    (lambda i: _shard0(i).update(docs_file="sub/../../x.npy"), r"shards\[0\].docs_file must be a file name"),
    (lambda i: i["splits"]["train"].update(docs=1), "must be the sums over its shards"),
])
def test_index_structure_and_paths(tmp_path, edit, message):
    from tinytensor.data import DataLoader, load_index
    index = _dataset(tmp_path)
    (tmp_path.parent / "outside.bin").write_bytes(b"\0\0" * _shard0(index)["tokens"])
    _edit_index(tmp_path, index, edit)
    with pytest.raises(ValueError, match=f"index.json: .*{message}"):
        load_index(str(tmp_path))
    with pytest.raises(ValueError, match="index.json"):
        DataLoader(str(tmp_path), "train", batch_size=1, block_size=4)


@pytest.mark.parametrize("starts, message", [
    (lambda s: s[::-1].copy(), "increasing"),
    (lambda s: s + 1000, "increasing and in"),
    (lambda s: s - s[0] - 1, "increasing and in"),
    (lambda s: s.astype(float), "integer document starts"),
    (lambda s: s[:-1], "integer document starts"),
    (lambda s: s + 1, "starts at token .*not BOS"),
])
def test_docs_npy_contents(tmp_path, starts, message):
    import numpy as np
    from tinytensor.data import DataLoader, corpus_stats
    index = _dataset(tmp_path)
    docs_path = tmp_path / _shard0(index)["docs_file"]
    np.save(docs_path, starts(np.load(docs_path)))
    with pytest.raises(ValueError, match=f"{_shard0(index)['docs_file']}: .*{message}"):
        DataLoader(str(tmp_path), "train", batch_size=1, block_size=4, align="doc")
    with pytest.raises(ValueError, match=message):
        corpus_stats(str(tmp_path), "train")


def test_good_dataset_opens(tmp_path):
    from tinytensor.data import DataLoader
    _dataset(tmp_path)
    x, y = DataLoader(str(tmp_path), "train", batch_size=2, block_size=4, align="doc").next_batch()
    assert x.shape == (2, 4)


# ----- training checkpoints: checkpoint.json's checksum, optimizer and scheduler state, all or nothing -----

def _sign(doc):
    import hashlib
    body = {k: v for k, v in doc.items() if k != "checkpoint_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    doc["checkpoint_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()


def _edit_checkpoint(d, change, sign=True):
    doc = json.loads((d / "checkpoint.json").read_text(encoding="utf-8"))
    change(doc)
    if sign:
        _sign(doc)
    (d / "checkpoint.json").write_text(json.dumps(doc), encoding="utf-8")


def _run(seed=0):
    import tinytensor as tt
    from tinytensor import nn
    tt.manual_seed(seed)
    model = nn.Linear(3, 2)
    opt = tt.optim.AdamW(model.parameters(), lr=0.1)
    sched = tt.optim.lr_scheduler.StepLR(opt, step_size=2)
    return model, opt, sched


def _trained_checkpoint(d):
    import tinytensor as tt
    model, opt, sched = _run()
    for _ in range(3):
        model(tt.ones(4, 3)).sum().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    tt.save_checkpoint(d, model=model, optimizer=opt, scheduler=sched, step=3, extra={"note": "x", 10: 1, 2: 0})


def test_checkpoint_json_is_checksummed(tmp_path):
    import tinytensor as tt
    d = tmp_path / "ckpt"
    _trained_checkpoint(d)
    assert tt.load_checkpoint(d)["extra"] == {"note": "x", "10": 1, "2": 0}
    _edit_checkpoint(d, lambda doc: doc.update(step=4), sign=False)
    with pytest.raises(ValueError, match="checkpoint.json: contents do not match its checkpoint_sha256"):
        tt.load_checkpoint(d)
    _edit_checkpoint(d, lambda doc: doc.pop("checkpoint_sha256"), sign=False)
    with pytest.raises(ValueError, match="checkpoint.json: no checkpoint_sha256"):
        tt.load_checkpoint(d)


def _group(doc):
    return doc["state"]["optimizer"]["param_groups"][0]


@pytest.mark.parametrize("change, message", [
    (lambda doc: _group(doc).update(lr=float("nan")), r"param_groups\[0\].lr = nan"),
    (lambda doc: _group(doc).update(lr=-1.0), r"param_groups\[0\].lr = -1.0"),
    (lambda doc: _group(doc).update(lr="0.1"), r"param_groups\[0\].lr = '0.1'"),
    (lambda doc: _group(doc).update(betas=[0.9, 1.5]), r"param_groups\[0\].betas = \[0.9, 1.5\]"),
    (lambda doc: _group(doc).update(betas=[0.9]), r"param_groups\[0\].betas"),
    (lambda doc: _group(doc).update(eps=float("inf")), r"param_groups\[0\].eps = inf"),
    (lambda doc: _group(doc).update(amsgrad=1), r"param_groups\[0\].amsgrad = 1"),
    (lambda doc: doc["state"]["optimizer"]["state"]["0"].update(step=float("nan")), "'step' is nan"),
    (lambda doc: doc["state"]["scheduler"].update(base_lrs=[float("inf")]), "StepLR.load_state_dict: base_lrs"),
    (lambda doc: doc["state"]["scheduler"].update(last_epoch="3"), "StepLR.load_state_dict: last_epoch"),
    (lambda doc: doc["state"]["scheduler"].update(_last_lr=[0.1, 0.2]), "StepLR.load_state_dict: _last_lr"),
    (lambda doc: doc["state"]["rng"]["tinytensor"].update(state={"x": 1}), "bad rng state"),
])
def test_resume_validates_and_changes_nothing(tmp_path, change, message):
    import numpy as np
    import tinytensor as tt
    d = tmp_path / "ckpt"
    _trained_checkpoint(d)
    _edit_checkpoint(d, change)
    model, opt, sched = _run(seed=1)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    groups, epoch, rng = [dict(g) for g in opt.param_groups], sched.last_epoch, tt.default_generator.get_state()
    with pytest.raises(ValueError, match=f"checkpoint.json: .*{message}"):
        tt.load_checkpoint(d, model=model, optimizer=opt, scheduler=sched)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b)     # the model was not loaded
    assert opt.param_groups == groups and opt.state == {} and sched.last_epoch == epoch
    assert tt.default_generator.get_state() == rng


def test_optimizer_state_shapes_must_match(tmp_path):
    import tinytensor as tt
    scalar = tt.zeros((), requires_grad=True)
    opt = tt.optim.Adam([scalar])
    scalar.sum().backward()
    opt.step()
    matrix = tt.zeros(3, 2, requires_grad=True)
    other = tt.optim.Adam([matrix])
    with pytest.raises(ValueError, match=r"loaded state 'exp_avg' has shape \(\), the parameter has \(3, 2\)"):
        other.load_state_dict(opt.state_dict())
    assert other.state == {}


# ----- written files respect the umask -----

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_respect_the_umask(tmp_path, umask):
    import stat
    import tinytensor as tt
    from tinytensor import nn
    old = os.umask(umask)
    try:
        tt.save({"w": tt.ones(2)}, tmp_path / "w.safetensors")
        tt.save_checkpoint(tmp_path / "ckpt", model=nn.Linear(2, 1))
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    files = [tmp_path / "w.safetensors", tmp_path / "plain.txt", *(tmp_path / "ckpt").iterdir()]
    assert len(files) == 4
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(expected) for f in files}


def test_umask_read_without_proc(monkeypatch):
    import tinytensor.io as tio

    def no_proc(*args, **kw):
        raise OSError("no /proc here")
    old = os.umask(0o027)
    try:
        assert tio._umask() == 0o027
        monkeypatch.setattr(tio, "open", no_proc, raising=False)
        assert tio._umask() == 0o027 and os.umask(0o027) == 0o027    # read, and left as it was
    finally:
        os.umask(old)


# ----- code health: the tokenizer's modules import in one direction; one JSON-reading helper -----

def test_tokenizer_modules_have_no_import_cycle():
    import ast
    folder = os.path.join(ROOT, "tinytensor", "tokenizer")
    graph = {}
    for name in os.listdir(folder):
        if name.endswith(".py") and name != "__init__.py":
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            graph[name[:-3]] = {n.module for n in ast.walk(tree)      # function-level imports count too
                                if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    done, path = set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join(path + [module])}"
        if module in done:
            return
        path.append(module)
        for dep in graph.get(module, ()):
            visit(dep)
        path.pop()
        done.add(module)
    for module in graph:
        visit(module)
    assert graph["files"] == {"common"} and graph["common"] == set()


def test_one_json_reader():
    """Every JSON file in tinytensor/ and models/ is read by tinytensor.jsonfile.read_json."""
    import re
    readers = []
    for folder in ("tinytensor", "models"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if name.endswith(".py") and name != "jsonfile.py":
                    with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                        if re.search(r"json\.load\(", f.read()):
                            readers.append(name)
    assert readers == []


@pytest.mark.parametrize("content, message", [
    (b'{"a": 1,\n "b": }', r"bad.json:2: not valid JSON: Expecting value"),
    (b'{"a": "\xff"}', r"bad.json: not UTF-8"),
    (b'{"a": 1, "a": 2}', r"bad.json: duplicate key 'a'"),
    (b"[" * 100_000 + b"]" * 100_000, r"bad.json: JSON nested too deeply"),
    (b"{}" + b" " * 100, r"bad.json: file is larger than the 50 bytes allowed"),
])
def test_read_json_errors_name_the_file(tmp_path, content, message):
    from tinytensor.jsonfile import read_json
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_json(tmp_path / "bad.json", limit=50 if len(content) == 102 else None, unique_keys=True)
    with pytest.raises(ValueError, match=r"missing.json: cannot read the file \(No such file"):
        read_json(tmp_path / "missing.json")


def test_json_errors_of_each_reader(tmp_path):
    """config.json, index.json, tokenizer.json and encoder.json errors all name the file and line."""
    from models.gpt2 import GPT
    from tinytensor.data import load_index
    bad = b'{\n "x": [1,\n}'
    for name in ("config.json", "index.json", "tokenizer.json", "encoder.json"):
        (tmp_path / name).write_bytes(bad)
    for call, name in [(lambda: GPT.from_pretrained(str(tmp_path)), "config.json"),
                       (lambda: load_index(str(tmp_path)), "index.json"),
                       (lambda: Tokenizer.load_hf(tmp_path / "tokenizer.json"), "tokenizer.json"),
                       (lambda: GPT2Tokenizer.from_files(tmp_path / "encoder.json", "nothing"), "encoder.json")]:
        with pytest.raises(ValueError, match=f"{name}:3: not valid JSON"):
            call()
    (tmp_path / "config.json").write_bytes(b"[1, 2]")
    with pytest.raises(ValueError, match="config.json: expected a JSON object"):
        GPT.from_pretrained(str(tmp_path))
