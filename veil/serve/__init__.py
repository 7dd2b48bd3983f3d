"""``veil serve``: a local service and a review web app for redaction plans.

Analysis runs in worker processes and writes a plan; a person reviews and corrects it in the
browser (every action recorded); export renders exactly the reviewed plan. See
:mod:`veil.serve.app` for the REST API, :mod:`veil.serve.security` for who may call it.
"""

from .app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app", "default_data_dir"]


def default_data_dir():
    """``$VEIL_HOME/serve``, else the per-user data directory's ``serve`` folder."""
    from ..dirs import data_dir

    return data_dir() / "serve"
