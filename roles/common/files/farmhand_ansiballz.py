"""A compiled-code cache for the Ansible modules that run on this host (Farmhand's `common` role).

Each Ansible task ships its module as a zip (AnsiballZ) that Python imports with zipimport, which
never writes bytecode: every task compiles ansible-core's module_utils again, and Python 3.11
compiles each module twice (once to name its file, once to run it). About a third of a task's CPU
on the host goes there.

Loaded at every interpreter's start by farmhand-ansiballz.pth, this puts an importer before
zipimport that takes Ansible's payload zips only (`.../ansible_<module>_payload.zip`) and compiles
each of their modules once per content: the code object is kept in CACHE_DIR, named by the SHA-256
of the interpreter's magic number and the module's source, so another ansible-core or Python
brings new entries and never stale code. Only root's runs use the cache (the directory is root's,
mode 0700; systemd-tmpfiles ages entries out); any other user's run, and any error reading or
writing it, compiles as zipimport does. Every other zip, and everything else, is zipimport's.
"""

from __future__ import annotations

import os
import sys
import zipimport

CACHE_DIR = "/var/cache/farmhand/ansiballz"
PAYLOAD_MARK = "_payload.zip"


def is_payload(path: str) -> bool:
    """Whether `path` is an AnsiballZ payload zip, or a directory inside one."""
    archive, found, _ = path.partition(PAYLOAD_MARK)
    return bool(found) and os.path.basename(archive).startswith("ansible_")


CodeType = type(is_payload.__code__)  # types.CodeType, without importing `types` at every start


class PayloadImporter(zipimport.zipimporter):
    """zipimport for Ansible's payload zips, compiling each module once per content."""

    def __init__(self, path: str) -> None:
        if not is_payload(path):
            raise zipimport.ZipImportError("not an Ansible payload zip", path=path)
        super().__init__(path)

    def _source(self, fullname: str) -> str | None:
        """The module's source file inside the zip, if it has one (else zipimport decides)."""
        name = self.prefix + fullname.rpartition(".")[2]
        for path in (f"{name}/__init__.py", f"{name}.py"):
            if path in self._files:
                return path
        return None

    def get_filename(self, fullname: str) -> str:
        # zipimport compiles the module to answer this; its file name is all that is asked.
        path = self._source(fullname)
        return os.path.join(self.archive, path) if path else super().get_filename(fullname)

    def get_code(self, fullname: str) -> CodeType:
        path = self._source(fullname)
        if path is None:
            return super().get_code(fullname)
        filename = os.path.join(self.archive, path)
        source = self.get_data(filename)
        if os.geteuid() != 0:
            return compile(source, filename, "exec", dont_inherit=True)
        return cached_code(source, filename)


def cached_code(source: bytes, filename: str) -> CodeType:
    """The code of `source`: from the cache if it holds it, else compiled and kept there."""
    import _imp
    import contextlib
    import hashlib
    import marshal
    from importlib.util import MAGIC_NUMBER

    entry = os.path.join(CACHE_DIR, hashlib.sha256(MAGIC_NUMBER + source).hexdigest())
    try:
        with open(entry, "rb") as stored:
            code = marshal.load(stored)
    except (OSError, EOFError, ValueError, TypeError):
        pass  # not there yet, or unreadable: compiled and written again below
    else:
        if isinstance(code, CodeType):
            _imp._fix_co_filename(code, filename)  # tracebacks name this run's zip, as a .pyc's do
            return code
    code = compile(source, filename, "exec", dont_inherit=True)
    partial = f"{entry}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, entry)
    except OSError:  # no cache directory (yet), or a full disk: the module runs all the same
        with contextlib.suppress(OSError):
            os.unlink(partial)
    return code


def install() -> None:
    """Put the importer before zipimport (once per interpreter)."""
    if PayloadImporter not in sys.path_hooks:
        sys.path_hooks.insert(0, PayloadImporter)
        sys.path_importer_cache.clear()


install()
