"""``--engine`` and ``--address``: where ``veil anonymize``, ``analyze``, ``render`` and
``stream`` run (see :mod:`veil.engine`). Declared once, as :mod:`veil.cli.options` declares the
others: a command takes ``engine: EngineOpt = "local", address: AddressOpt = None``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..engine import ENGINES
from .common import _choices

__all__ = ["EngineName", "EngineOpt", "AddressOpt", "ENGINE_PANEL"]

EngineName = _choices("EngineName", ENGINES)
ENGINE_PANEL = "Engine"

EngineOpt = Annotated[EngineName, typer.Option(  # type: ignore[valid-type]
    "--engine", rich_help_panel=ENGINE_PANEL,
    help="local: in this process (default, needs nothing started); ray: on a Ray cluster (pip install 'veil\\[ray]'): "
         "folders on a pool of workers, videos in segments, several streams at once.")]
AddressOpt = Annotated[Optional[str], typer.Option(
    "--address", rich_help_panel=ENGINE_PANEL,
    help="With --engine ray: the cluster ('auto', 'ray://host:port'); default: start a private Ray instance on "
         "127.0.0.1 for this run.")]
