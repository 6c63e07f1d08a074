"""Loaded (through PYTHONPATH) by the Python processes of the Ansible runs in
bench/compare/run.sh, and by nothing else.

moto's ListStackResources leaves out LastUpdatedTimestamp, which AWS always returns;
amazon.aws.cloudformation 5.5 reads it unconditionally after every create or update and
fails on moto without it. This fills the field in, in the parsed
response only, when botocore is imported: the module makes the same calls it makes against
AWS and sees the shape AWS sends. Nothing else is changed, and no other process loads it.
"""
import datetime
import importlib.abc
import importlib.util
import os
import sys


def _fill_last_updated(parsed=None, **_kwargs):
    for summary in (parsed or {}).get("StackResourceSummaries", []):
        summary.setdefault("LastUpdatedTimestamp", datetime.datetime.now(datetime.timezone.utc))


def _patch(session_module):
    original_init = session_module.Session.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.register("after-call.cloudformation.ListStackResources", _fill_last_updated)

    session_module.Session.__init__ = init


class _PatchBotocoreSession(importlib.abc.MetaPathFinder):
    """Patches botocore.session as it is first imported (no cost for other processes)."""

    def find_spec(self, name, path=None, target=None):
        if name != "botocore.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _PatchBotocoreSession())

# Run the sitecustomize this one shadows (Debian has one), if any.
_here = os.path.dirname(os.path.abspath(__file__))
for _entry in sys.path:
    _candidate = os.path.join(_entry or ".", "sitecustomize.py")
    if os.path.abspath(_entry or ".") != _here and os.path.isfile(_candidate):
        with open(_candidate, encoding="utf-8") as _f:
            exec(compile(_f.read(), _candidate, "exec"), {"__name__": "sitecustomize"})
        break
