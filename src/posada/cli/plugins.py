"""Commands another installed package adds to `posada`, found through the `posada.commands`
entry points and imported only when one of them is run or listed.

The benchmark (`posada_bench`) adds `bench`, `loadtest`, `budget`, `fake-llm` and
`db profile` this way, so posada itself never imports it and `posada serve` loads none of
it. An entry point's name is the command's (`db.profile`: `profile` under `posada db`);
its object is a Typer app (a command group) or a function (one command).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import typer
from typer._click.core import Command, Context  # typer carries its own click
from typer.core import TyperGroup

GROUP = "posada.commands"


def plugins(parent: str) -> dict[str, EntryPoint]:
    """The entry points of the commands under `parent` ("" for the top level), by name."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        under, _, name = point.name.rpartition(".")
        if under == parent:
            found[name] = point
    return found


def _as_click(name: str, target: object) -> Command:
    # Built as `posada` builds its own: a group stays a group even with one command.
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    elif callable(target):
        holder.command(name)(target)
    else:
        raise TypeError(f"entry point {name!r} is neither a Typer app nor a function")
    holder.callback()(lambda: None)  # two levels, so that the wanted one can be taken
    built = typer.main.get_command(holder)
    assert isinstance(built, TyperGroup)
    return built.commands[name]


class PluginGroup(TyperGroup):
    """A command group that also offers the entry points' commands under its name."""

    parent = ""

    def list_commands(self, ctx: Context) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *sorted(name for name in plugins(self.parent) if name not in own)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        own = super().get_command(ctx, cmd_name)
        if own is not None:
            return own
        point = plugins(self.parent).get(cmd_name)
        return _as_click(cmd_name, point.load()) if point is not None else None


class DbGroup(PluginGroup):
    """`posada db`, with `db.*` entry points."""

    parent = "db"
