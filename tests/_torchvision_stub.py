"""A stand-in for torchvision, so torch-fidelity's metric functions import without it.

torch-fidelity imports torchvision only for datasets and image I/O, none of which the feature-level
functions tested here touch. Any attribute is a further stand-in; capitalised names are classes
(torch-fidelity subclasses torchvision datasets at import time).
"""

import sys
import types


class _Stub(types.ModuleType):
    def __init__(self, name):
        super().__init__(name)
        self.__path__ = []  # a package, so that "from torchvision.x import y" works

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].isupper():
            value = type(name, (), {"__init__": lambda self, *a, **k: None})
        else:
            value = _Stub(f"{self.__name__}.{name}")
            sys.modules[value.__name__] = value
        setattr(self, name, value)
        return value

    def __call__(self, *args, **kwargs):
        return None


def import_with_stub(module: str):
    """Import ``module`` with the stand-in in place, then take the stand-in out of sys.modules again
    (so that other packages, e.g. torchmetrics, still see that torchvision is absent)."""
    import importlib

    try:
        import torchvision  # noqa: F401
        return importlib.import_module(module)
    except ImportError:
        pass
    before = set(sys.modules)
    for name in ("torchvision", "torchvision.datasets", "torchvision.transforms", "torchvision.transforms.functional",
                 "torchvision.io", "torchvision.models", "torchvision.utils", "torchvision.ops"):
        sys.modules[name] = _Stub(name)
    try:
        return importlib.import_module(module)
    finally:
        for name in set(sys.modules) - before:
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]
