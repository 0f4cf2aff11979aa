"""metanas: neural architecture search strategies for KerasTuner and AutoKeras.

The strategies live in `metanas.tuners`; the neighbours they plug into
(AutoKeras, MLflow, Optuna) each have a subpackage of their own, imported only
when used.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
