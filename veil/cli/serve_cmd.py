"""``veil serve``: the review service and web app (needs the ``serve`` extra)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import PresetName, _value, one_line_errors
from .progress import console

__all__ = ["serve"]


@one_line_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind. Anything but loopback needs $VEIL_SERVE_TOKEN."),
    port: int = typer.Option(8765, help="Port."),
    data_dir: Optional[Path] = typer.Option(None, help="Where jobs and the job store live (default: veil's data directory)."),
    root: Optional[list[Path]] = typer.Option(None, "--root", help="A folder whose files may be opened by path (repeatable)."),
    max_upload_mb: int = typer.Option(4096, help="Largest upload accepted, MB."),
    workers: int = typer.Option(1, help="Worker processes for analysis and export."),
    preset: PresetName = typer.Option("balanced", help="Settings preset for analyses."),
    prefetch: int = typer.Option(0, min=0, max=64, help="Frames decoded ahead after each frame the player asks for (0: off)."),
) -> None:
    """Serve the review app: upload, analyse, review and correct the plan, export."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("veil serve needs the serve extra: pip install 'veil[serve]'") from None
    from ..serve import ServeSettings, create_app, default_data_dir
    from ..serve.security import hash_token, is_loopback

    token = os.environ.get("VEIL_SERVE_TOKEN")
    if not is_loopback(host):
        if not token or len(token) < 16:
            raise ConfigError(f"binding to {host} needs an access token: set VEIL_SERVE_TOKEN to a random string "
                              "of 16+ characters (only its hash is kept)")
    settings = ServeSettings(data_dir=data_dir or default_data_dir(), roots=list(root or []),
                             max_upload_mb=max_upload_mb, workers=workers, preset=_value(preset), prefetch=prefetch,
                             token_sha256=hash_token(token) if token else None)
    logging.getLogger("veil.serve").setLevel(logging.INFO)
    console.print(f"veil serve: http://{host}:{port}/  (API docs at /docs; data in {settings.data_dir})")
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning")
