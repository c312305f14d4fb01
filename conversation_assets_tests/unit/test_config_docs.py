"""The README's configuration table is the one generated from Config."""

from pathlib import Path

from conversation_assets.config import Config, markdown_table, settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_generated_from_config() -> None:
    assert markdown_table() in README.read_text(), (
        "README.md's configuration table is stale: paste `uv run python -m "
        "conversation_assets.config` between its markers"
    )


def test_every_field_of_config_is_a_documented_setting() -> None:
    variables = [item.variable for item in settings().values()]
    assert len(variables) == len(set(variables)), "one variable per setting"
    assert set(settings()) == set(Config.__dataclass_fields__)
    assert all(item.meaning for item in settings().values())


def test_every_default_is_valid() -> None:
    """Each default parses with its own parser: the defaults are the documented values."""
    config = Config.from_env({}, require_token=False)
    for name, item in settings().items():
        if item.default:
            assert getattr(config, name) == item.read(item.default)
