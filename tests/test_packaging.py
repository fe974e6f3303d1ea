"""The first minutes of a new user: what `pip install -e .` gives, from any folder.

`models` imports from any directory; no example or bench edits sys.path; Python started in the folder
above a checkout named `tinytensor` still imports the installed package (not the checkout as an empty
namespace package, which gave "no attribute manual_seed"); the licence file matches setup.cfg.
"""
import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_models_import_from_any_directory(tmp_path):
    done = run_python("import models.gpt2, models.llama, models.mlp, models.sampling, tinytensor as tt; "
                      "print(models.gpt2.__file__, tt.__file__)", tmp_path)
    assert done.returncode == 0, done.stderr
    models_file, tt_file = done.stdout.split()
    assert Path(models_file).parent == ROOT / "models" and Path(tt_file).parent == ROOT / "tinytensor"


@pytest.mark.parametrize("path", sorted(ROOT.glob("examples/*.py")) + sorted(ROOT.glob("bench/*.py")),
                         ids=lambda p: p.name)
def test_no_sys_path_edits(path):
    assert "sys.path" not in path.read_text(encoding="utf-8")


def test_checkout_named_tinytensor_does_not_shadow_the_package(tmp_path):
    """Python in the folder above a checkout named `tinytensor` imports the real package, not the checkout.

    Without setup.cfg's package_dir the editable install maps the package through a finder that runs
    after the path search, which takes the checkout for an empty namespace package: tt.manual_seed fails.
    """
    (tmp_path / "tinytensor").symlink_to(ROOT, target_is_directory=True)
    done = run_python("import tinytensor as tt; tt.manual_seed(0); print(tt.__file__)", tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "tinytensor" / "__init__.py"


def test_licence_is_the_one_setup_cfg_names():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
