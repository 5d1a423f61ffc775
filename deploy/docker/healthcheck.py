"""The image's HEALTHCHECK: exit 0 when the server's /health answers 200 (liveness, model or not).

The port is the one `mloop serve` binds in the container: SAGEMAKER_BIND_TO_PORT if set, else
MLOOP_SERVE__PORT (8000 in the image). Standard library only, so it starts fast and needs no curl.
"""

import os
import sys
import urllib.request

port = os.environ.get("SAGEMAKER_BIND_TO_PORT") or os.environ.get("MLOOP_SERVE__PORT") or "8000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as response:  # noqa: S310 - fixed local URL
        sys.exit(0 if response.status == 200 else 1)
except OSError as exc:
    print(f"unhealthy: {exc}", file=sys.stderr)  # noqa: T201
    sys.exit(1)
