"""Models not implemented yet, for one `parity` process, without hooks in the product: put this folder on
PYTHONPATH (tests/cli_helpers.py `unimplemented_env`).

With PARITY_TEST_NO_LOADER=DATASET[,DATASET...] set, `parity.datasets.supported_datasets()` leaves those data
sets out, so their models are refused as "not implemented yet (no loader for its data set ...)" exactly as a
model without a loader is (parity.runner.missing_support). Patched before any `parity` module imports the
function by name. The variable is removed from the environment, so the workers the process starts are
unaffected; without it nothing is imported or patched. Test-side only (tests/test_cli_errors.py,
tests/test_fault_matrix.py, tests/test_course_run.py).
"""

from __future__ import annotations

import os

_UNLOADED = frozenset(filter(None, os.environ.pop("PARITY_TEST_NO_LOADER", "").split(",")))

if _UNLOADED:
    import parity.datasets

    _every_loader = parity.datasets.supported_datasets

    def _supported_but_unloaded() -> frozenset[str]:
        return _every_loader() - _UNLOADED

    parity.datasets.supported_datasets = _supported_but_unloaded
