"""``follicle web``: serve the browser app over a CDM (loopback only unless a token is given)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from follicle.cli._common import console, guarded


def register(app: typer.Typer) -> None:
    """Add the ``web`` command to *app*."""

    @app.command("web")
    @guarded
    def web(
        db: Annotated[str, typer.Option("--db", envvar="FOLLICLE_DB", help="The CDM: a DuckDB file or a postgresql:// URL.")],
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
        host: Annotated[str, typer.Option("--host", help="Interface to bind; anything but loopback needs a token.")] = "127.0.0.1",
        runs: Annotated[Path, typer.Option("--runs", help="Folder for study drafts and runs.")] = Path("follicle-web"),
        token: Annotated[Optional[str], typer.Option("--token", help="Access token (else FOLLICLE_WEB_TOKEN); required "
                                                     "for a non-loopback --host.", show_default=False)] = None,
        min_cell_count: Annotated[int, typer.Option("--min-cell-count", min=5, help="Counts below this are shown "
                                                    "as '<N' on pages not tied to a study spec.")] = 10,
    ) -> None:
        """Serve the web app: data, concepts, cohorts, study designer, runs, meta-analysis, decision support."""
        import uvicorn

        from follicle.cdm.connect import connect, dialect_of, redact
        from follicle.web.app import create_app
        from follicle.web.settings import WebSettings, check_bind, resolve_token

        secret = resolve_token(token)
        check_bind(host, secret)
        connect(db, read_only=dialect_of(db) == "duckdb").disconnect()  # fail now, clearly, if the CDM cannot open
        settings = WebSettings(db=db, runs=runs.resolve(), token=secret, host=host, port=port,
                               min_cell_count=min_cell_count)
        app = create_app(settings)
        shown = f"[{host}]" if ":" in host else host
        console.print(f"Follicle web on http://{shown}:{port}/  (CDM {redact(db)}; runs in {settings.runs})"
                      + ("  token required" if secret else ""), highlight=False)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            app.state.runs.shutdown()
