"""The package imports, reports its version, and its command line answers --help."""

from typer.testing import CliRunner

import follicle
from follicle.cli import app


def test_version_matches_metadata_format():
    assert follicle.__version__.count(".") == 2


def test_cli_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "follicle" in result.output.lower()
