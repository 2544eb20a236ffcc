"""The REST API (FastAPI): jobs, lookup, destinations, health and metrics.

:func:`create_app` builds the application over a job store; ``service.py``
runs it with uvicorn next to the workers.
"""

from pacsbridge.api.app import create_app
from pacsbridge.api.uploads import UploadLimits

__all__ = ["UploadLimits", "create_app"]
