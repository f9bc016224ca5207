"""Build hook: a wheel (``pip install .``, ``pip wheel .``) carries a copy of ``data/`` as package data.

``data/`` stays the checkout's top-level folder (made by repo code, listed in data/MANIFEST.json). An editable
install reads it in place; a regular build copies it to ``saliency_lib/shipped_data/`` in the wheel, where
``saliency_lib.io.assets.find_data_dir`` looks when there is no checkout. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = Path(__file__).resolve().parent / "data"


class BuildWithData(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # the checkout's data/ is found in place
            return
        target = Path(self.build_lib) / "saliency_lib" / "shipped_data"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(DATA, target)


setup(cmdclass={"build_py": BuildWithData})
