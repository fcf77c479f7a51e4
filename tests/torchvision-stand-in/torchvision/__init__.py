"""Import-only stand-in for torchvision (ganmetrics' test extra); it is not torchvision.

Every attribute and submodule exists so that packages which import torchvision at module level
(pytorch-fid, clean-fid, torch-fidelity, torchmetrics) import; capitalised names are classes, other
names are further stand-in modules. Calling anything that would need real torchvision raises.
"""

import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.2.2+ganmetrics.standin"
STANDIN = True


class _StandInModule(types.ModuleType):
    def __init__(self, name):
        super().__init__(name)
        self.__path__ = []
        self.__spec__ = importlib.machinery.ModuleSpec(name, _Finder, is_package=True)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].isupper():
            value = type(name, (), {"__init__": _unavailable, "__module__": self.__name__})
        else:
            full = f"{self.__name__}.{name}"
            value = sys.modules.get(full) or _StandInModule(full)
            sys.modules[full] = value
        setattr(self, name, value)
        return value

    def __call__(self, *args, **kwargs):
        _unavailable()


def _unavailable(*args, **kwargs):
    raise RuntimeError("torchvision here is ganmetrics' import-only stand-in; install a real torchvision to use it")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every `torchvision.*` submodule as a stand-in module."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.startswith(__name__ + "."):
            return importlib.machinery.ModuleSpec(fullname, cls, is_package=True)
        return None

    @classmethod
    def create_module(cls, spec):
        return _StandInModule(spec.name)

    @classmethod
    def exec_module(cls, module):
        parent, _, child = module.__name__.rpartition(".")
        setattr(sys.modules[parent], child, module)


sys.meta_path.append(_Finder)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(sys.modules[__name__ + "._root"], name)


sys.modules[__name__ + "._root"] = _StandInModule(__name__)
