"""The common role's module cache (roles/common/files/farmhand_ansiballz.py), run by the hosts'
interpreter (Debian's /usr/bin/python3): payload zips' modules are compiled once per content and
then come from the cache, with this run's file names; anything else is zipimport's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPORTER_DIR = REPO_ROOT / "roles" / "common" / "files"
PYTHON = "/usr/bin/python3"  # the interpreter the hosts run Ansible's modules with

# Imports pkg.mod from the zip with the importer installed and CACHE_DIR set, counting what is
# compiled from the zip, and says what it found.
PROBE = """
import builtins, json, os, sys, traceback
sys.path.insert(0, {importer_dir!r})
import farmhand_ansiballz
farmhand_ansiballz.CACHE_DIR = {cache!r}
if {not_root!r}:
    os.geteuid = lambda: 1000
compiled = []
real_compile = builtins.compile
def counting_compile(source, filename, *args, **kwargs):
    if {zip_path!r} in str(filename):
        compiled.append(str(filename))
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting_compile
sys.path.insert(0, {zip_path!r})
import pkg.mod
try:
    pkg.mod.fail()
except RuntimeError:
    where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({{"value": pkg.mod.VALUE, "file": pkg.mod.__file__, "traceback": where,
    "compiled": sorted(compiled)}}))
"""


def payload(directory: Path, value: str = "6 * 7", name: str = "ansible_stat_payload.zip") -> Path:
    """A zip laid out as Ansible's payloads are: a package and a module in it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/mod.py", f"VALUE = {value}\n\ndef fail():\n    raise RuntimeError('here')\n")
    return path


def probe(zip_path: Path, cache: Path, *, not_root: bool = False) -> dict:
    code = PROBE.format(
        importer_dir=str(IMPORTER_DIR), cache=str(cache), zip_path=str(zip_path), not_root=not_root
    )
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    return path


def test_a_payloads_modules_are_compiled_once_then_come_from_the_cache(tmp_path, cache):
    first = probe(payload(tmp_path / "ansible_stat_payload_a"), cache)
    assert first["value"] == 42
    assert [Path(f).name for f in first["compiled"]] == ["__init__.py", "mod.py"]  # once each
    assert len(entries(cache)) == 2

    # The next task's payload: the same modules in a zip of its own, elsewhere.
    second_zip = payload(tmp_path / "ansible_stat_payload_b")
    second = probe(second_zip, cache)
    assert second["value"] == 42
    assert second["compiled"] == []
    assert len(entries(cache)) == 2
    # The module and its tracebacks name this run's zip, not the run that filled the cache.
    assert second["file"] == str(second_zip / "pkg" / "mod.py")
    assert second["traceback"] == str(second_zip / "pkg" / "mod.py")


def test_changed_source_is_compiled_again_under_its_own_entry(tmp_path, cache):
    probe(payload(tmp_path / "ansible_stat_payload_a"), cache)
    changed = probe(payload(tmp_path / "ansible_stat_payload_b", value="7"), cache)
    assert changed["value"] == 7
    assert [Path(f).name for f in changed["compiled"]] == ["mod.py"]
    assert len(entries(cache)) == 3  # the unchanged __init__ shares its entry


def test_other_zips_are_left_to_zipimport(tmp_path, cache):
    found = probe(payload(tmp_path / "lib", name="lib.zip"), cache)
    assert found["value"] == 42
    assert entries(cache) == []


def test_a_damaged_entry_is_compiled_and_written_again(tmp_path, cache):
    probe(payload(tmp_path / "ansible_stat_payload_a"), cache)
    for entry in cache.iterdir():
        entry.write_bytes(b"not marshalled code")
    again = probe(payload(tmp_path / "ansible_stat_payload_b"), cache)
    assert again["value"] == 42
    assert len(again["compiled"]) == 2
    assert probe(payload(tmp_path / "ansible_stat_payload_c"), cache)["compiled"] == []


def test_a_run_as_another_user_compiles_and_writes_nothing(tmp_path, cache):
    found = probe(payload(tmp_path / "ansible_stat_payload_a"), cache, not_root=True)
    assert found["value"] == 42
    assert len(found["compiled"]) == 2
    assert entries(cache) == []


def test_without_its_directory_the_module_still_runs(tmp_path):
    missing = tmp_path / "absent"
    found = probe(payload(tmp_path / "ansible_stat_payload_a"), missing)
    assert found["value"] == 42
    assert not missing.exists()


def test_ansibles_own_modules_run_through_it_with_the_same_results(tmp_path, cache):
    """A real module run (AnsiballZ, as on a host): the first run fills the cache, the second
    compiles nothing new and returns the same result; a run without the importer agrees."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(IMPORTER_DIR)!r})\n"
        f"import farmhand_ansiballz\nfarmhand_ansiballz.CACHE_DIR = {str(cache)!r}\n"
    )
    ansible = str(Path(sys.executable).with_name("ansible"))
    target = tmp_path / "probe.txt"
    target.write_text("farmhand\n")

    def stat(with_importer: bool) -> dict:
        env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"}
        if with_importer:
            env["PYTHONPATH"] = str(site)
        proc = subprocess.run(
            [ansible, "localhost", "-c", "local", "-e", f"ansible_python_interpreter={PYTHON}",
             "-m", "ansible.builtin.stat", "-a", f"path={target} get_checksum=true"],
            capture_output=True, text=True, check=False, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["stat"]
        return {k: result[k] for k in ("exists", "size", "checksum", "mode", "path")}

    first = stat(with_importer=True)
    filled = entries(cache)
    assert len(filled) > 20  # module_utils and the module, each compiled once
    assert stat(with_importer=True) == first
    assert entries(cache) == filled
    assert stat(with_importer=False) == first
