"""The HTTP recommendation service (``growthrec serve``): FastAPI on uvicorn, hot model swap.

Needs the optional extra: ``pip install "growthrec[serve]"``.
"""

from __future__ import annotations

from growthrec.serving.app import app_from_environment, create_app
from growthrec.serving.holder import ModelHolder, ReloadOutcome, ServedModel, load_served

__all__ = [
    "ModelHolder",
    "ReloadOutcome",
    "ServedModel",
    "app_from_environment",
    "create_app",
    "load_served",
]
