"""Static checks of Actions workflows: no image build after validation, promotion by digest.

Layers: :mod:`loader` (the only file reading: workflows, local actions, scripts, compose
files) builds the :mod:`model`; :mod:`shell` reads shell text; :mod:`classify` and
:mod:`facts` say what each step does, and :mod:`smoke` and :mod:`started` settle which
container runs are smoke tests or deployments; :mod:`rules` (with :mod:`capture` for DG104)
turns that into findings; :mod:`output` renders them. :func:`lint` ties them
together.
"""

from digestgate.linting.api import LintResult, lint
from digestgate.linting.findings import RULES, Finding, Severity

__all__ = ["RULES", "Finding", "LintResult", "Severity", "lint"]
