"""Text commands of the 1:1 chat: case-, accent- and punctuation-tolerant; anything else is UNKNOWN."""

from __future__ import annotations

import pytest

from dialogs.commands import Command, normalise, parse


@pytest.mark.parametrize(
    ("text", "command"),
    [
        # ny sag
        ("ny sag", Command.NEW),
        ("NY SAG", Command.NEW),
        ("Ny sag", Command.NEW),
        ("  ny   sag  ", Command.NEW),
        ("ny sag!", Command.NEW),
        ("Ny sag.", Command.NEW),
        ("ny-sag", Command.NEW),
        ("ny\tsag\n", Command.NEW),
        ("ny\u00a0sag", Command.NEW),  # no-break space from a rich-text client
        ("ＮＹ ＳＡＧ", Command.NEW),  # full-width
        ("\u202eny sag", Command.NEW),  # a stray bidi override
        ("ny", Command.NEW),
        ("Start", Command.NEW),
        ("opret sag", Command.NEW),
        # fortsæt
        ("fortsæt", Command.CONTINUE),
        ("Fortsæt", Command.CONTINUE),
        ("FORTSÆT!", Command.CONTINUE),
        ("Fortsaet", Command.CONTINUE),
        ("fortsat", Command.CONTINUE),
        ("fortsæt sag", Command.CONTINUE),
        ("Fortsæt.", Command.CONTINUE),
        ("FORTSÆT SAG", Command.CONTINUE),
        ("videre", Command.CONTINUE),
        # mine sager
        ("mine sager", Command.LIST),
        ("Mine  sager.", Command.LIST),
        ("MINE SAGER", Command.LIST),
        ("mine sager?", Command.LIST),
        ("sager", Command.LIST),
        ("Mine", Command.LIST),
        # hjælp
        ("hjælp", Command.HELP),
        ("Hjælp!", Command.HELP),
        ("HJÆLP", Command.HELP),
        ("hjaelp", Command.HELP),
        ("Hjälp", Command.HELP),  # ä folds to a
        ("hjalp", Command.HELP),
        ("help", Command.HELP),
        ("Help?", Command.HELP),
        ("?", Command.HELP),
        (" ? ", Command.HELP),
    ],
)
def test_commands(text: str, command: Command) -> None:
    assert parse(text) is command


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        " ",
        "\n\t",
        "???",
        "!",
        "👍",
        "🆕 📂",
        "hej",
        "ny sag nu tak",
        "nysag",
        "ny_sag",
        "sag ny",
        "fortsætte",
        "x" * 10_000,
        "ny sag " * 2_000,
        "مرحبا بك",  # Arabic, right to left
        "שלום",  # Hebrew
        "\u202e\u202d\u2066\u2069",
        "\x00\x01\x7f",
        "<at>Opgaveflytning</at> hvad nu?",
        "Robert'); DROP TABLE cases;--",
    ],
)
def test_unknown_texts(text: str | None) -> None:
    assert parse(text) is Command.UNKNOWN


def test_normalise() -> None:
    assert normalise("  FORTSÆT!! ") == "fortsaet"
    assert normalise("Mine,  sager.") == "mine sager"
    assert normalise("Hjälp") == "hjalp"
    assert normalise("?") == "?"
    assert normalise("👍") == ""
    assert normalise("x" * 10_000) == "x" * 10_000


def test_every_command_has_its_own_name_as_alias() -> None:
    for command in Command:
        if command is not Command.UNKNOWN:
            assert parse(command.value) is command
            assert parse(command.value.upper()) is command
