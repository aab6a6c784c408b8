"""The screen registry is the one list of main screens: an entry added to it (a dummy
screen, registered here) gets its key, its ``:`` command and aliases, a palette entry, a
help row and its title — with no other change anywhere."""

from __future__ import annotations

import pytest
from textual.app import ComposeResult
from textual.widgets import OptionList, Static

from console.app import ConsoleApp
from console.commands import CommandError
from console.registry import SCREENS, ScreenEntry, ScreenRegistry
from console.screens.base import ConsoleScreen
from console.screens.help import HelpScreen
from tests.console.conftest import screen_text, submit, wait_for


class DummyScreen(ConsoleScreen):
    """Shows the argument of the ``:`` command that opened it."""

    def __init__(self) -> None:
        super().__init__()
        self.argument = ""

    def compose_body(self) -> ComposeResult:
        yield Static("dummy body", id="dummy-body")

    def apply_argument(self, arg: str) -> None:
        self.argument = arg
        self.query_one("#dummy-body", Static).update(f"dummy got {arg}")


DUMMY = ScreenEntry(
    name="dummy",
    screen=DummyScreen,
    key="7",
    title="Dummy screen",
    footer="Dum",
    aliases=("dm", "fake"),
    help="The dummy screen of the registry test (arg: any text)",
)


def recorded_app(screens: ScreenRegistry = SCREENS) -> ConsoleApp:
    return ConsoleApp("http://dev3000.test:3001", live=False, screens=screens)


def _palette_labels(app: ConsoleApp) -> list[str]:
    options = app.screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


@pytest.mark.anyio
async def test_a_registered_screen_gets_key_command_palette_help_and_title() -> None:
    app = recorded_app(SCREENS.with_screen(DUMMY))
    async with app.run_test(size=(140, 40)) as pilot:
        # its key, with its footer label, after the other screens' keys
        keys = [
            (active.binding.key, active.binding.description)
            for active in app.screen.active_bindings.values()
            if active.binding.show
        ]
        assert ("6", "Agent") in keys
        assert ("7", "Dum") in keys
        assert keys.index(("7", "Dum")) == keys.index(("6", "Agent")) + 1
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "dummy", what="the key")
        assert isinstance(app.screen, DummyScreen)
        # its title in the connection bar
        assert "Dummy screen" in screen_text(app)
        assert app.screen.screen_title == "Dummy screen"

        # its `:` command, an alias with an argument, and a prefix
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("colon")
        await submit(pilot, "dm hello there")
        await wait_for(pilot, lambda: app.current_mode == "dummy", what=":dm")
        screen = app.screen
        assert isinstance(screen, DummyScreen)
        assert screen.argument == "hello there"
        await pilot.press("1")
        await pilot.press("colon")
        await submit(pilot, "dumm")
        await wait_for(pilot, lambda: app.current_mode == "dummy", what=":dumm (a prefix)")

        # the help overlay lists its command with aliases and help
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        assert ":dummy" in help_text
        assert ":dm :fake" in help_text
        assert "The dummy screen of the registry test" in help_text
        assert "Keys — Dummy screen" in help_text
        await pilot.press("escape")

        # the palette offers it, and running it switches to it
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("ctrl+p")
        await pilot.press(*"dumm")
        await wait_for(
            pilot,
            lambda: any(":dummy" in label for label in _palette_labels(app)),
            what="the palette's hit",
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "dummy", what="the palette command")

        # the system commands' "Go to …" entries include it too
        names = [command.title for command in app.get_system_commands(app.screen)]
        assert "Go to dummy" in names


@pytest.mark.anyio
async def test_an_unregistered_screen_is_nowhere() -> None:
    app = recorded_app()
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await pilot.press("7")
        await pilot.pause()
        assert app.current_mode == "dashboard"
        await pilot.press("colon")
        await submit(pilot, "dummy")
        await wait_for(
            pilot, lambda: any("unknown command" in n.message for n in app._notifications)
        )
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ":dummy" not in screen_text(app)


def test_the_registry_refuses_clashing_keys_names_and_aliases() -> None:
    with pytest.raises(ValueError, match="share a key"):
        SCREENS.with_screen(ScreenEntry(name="other", screen=DummyScreen, key="1", title="Other"))
    with pytest.raises(CommandError, match="already :logs"):
        SCREENS.with_screen(
            ScreenEntry(name="other", screen=DummyScreen, key="8", title="Other", aliases=("l",))
        )
    with pytest.raises(CommandError, match="of :quit is already :exit"):
        SCREENS.with_screen(ScreenEntry(name="exit", screen=DummyScreen, key="8", title="Exit"))
    with pytest.raises(ValueError, match="not a word"):
        SCREENS.with_screen(ScreenEntry(name="it's", screen=DummyScreen, key="8", title="Bad"))
    with pytest.raises(ValueError, match="must include 'dashboard'"):
        ConsoleApp("http://dev3000.test:3001", live=False, screens=ScreenRegistry([DUMMY]))


def test_the_default_screens_keep_their_keys_and_commands() -> None:
    assert [(e.key, e.name) for e in SCREENS] == [
        ("1", "dashboard"),
        ("2", "health"),
        ("3", "circuits"),
        ("4", "logs"),
        ("5", "timeline"),
        ("6", "agent"),
    ]
    assert [spec.name for spec in SCREENS.commands] == [
        *(e.name for e in SCREENS),
        "help",
        "quit",
    ]
