"""The container image: built with podman and run on 127.0.0.1 (``make test-container``, also run by .ci/run).

Not part of ``make test``: a cold build takes minutes and installs podman. A run over the test folders
collects the tests here only when ``MLOOP_CONTAINER_TESTS=1``, which ``make test-container`` sets (naming
the test file on pytest's command line runs it regardless).
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("MLOOP_CONTAINER_TESTS") == "1" else ["test_*.py"]
