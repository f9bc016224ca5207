"""Build hook: a wheel (``pip install .``, ``pip wheel .``) carries a copy of ``data/`` as package data.

``data/`` stays the checkout's top-level folder (made by repo code, listed in data/MANIFEST.json). An editable
install reads it in place; a regular build copies it to ``saliency_lib/shipped_data/`` in the wheel, where
``saliency_lib.io.assets.find_data_dir`` looks when there is no checkout. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import Distribution, setup
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


class WithDataFilesWhenEditable(Distribution):
    """Editable installs (``pip install -e .``) get the data files too (the Jupyter settings of pyproject.toml's
    ``[tool.setuptools.data-files]``), copied into the environment as a regular install copies them.

    PEP 660 leaves a wheel's data files out of what is editable; setuptools' editable build means to copy them
    (``editable_wheel`` runs ``install_data``) but only when the distribution answers ``has_data()``, a method it
    does not define (it has ``has_data_files()``; setuptools 84), so the copy never happens. This answers it.
    """

    def has_data(self) -> bool:
        return self.has_data_files()


setup(cmdclass={"build_py": BuildWithData}, distclass=WithDataFilesWhenEditable)
