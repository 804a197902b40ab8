"""How ``esctl`` parses and explains itself, on top of Typer's command classes.

- Usage errors are one line, ``esctl: error: …`` (exit 2), not Click's three-line block.
- Global options (``--config``, ``--store-url``, ``--schema``, ``--log-level``) are accepted
  after the command too: ``esctl tail --config x.toml`` means ``esctl --config x.toml tail``.
- Help shows arguments by their metavar (``NAME``), not with a Python type (``NAME <str>``).
- Ctrl-C anywhere (parsing included) exits 130.
- Plain values (text, whole numbers, decimals) are converted without pydantic: Typer >= 0.25
  builds a pydantic ``TypeAdapter`` for every parameter it coerces, and importing pydantic
  and building the adapters was a third of ``esctl status``'s time. Anything else (paths,
  lists, a value the plain rules do not take, such as ``--max-lag 1_000`` or ``abc``) goes
  through Typer's own coercion, with its error messages (:func:`plain_coercion`).

Typer's public classes are used (``typer.core.TyperGroup`` / ``TyperCommand``, the ``cls``
hooks Typer documents) and Click's documented ``Command`` methods they inherit; the plain
coercion alone sets a parameter's lazily built coercion (``_runtime_param``, Typer 0.25+),
and does nothing where that attribute is missing (then every value goes through Typer).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

from esctl import exit_codes, render


def _takes_value(param: Any) -> bool:
    return bool(param.param_type_name == "option" and not param.is_flag and not param.count)


def _value_options(params: Sequence[Any]) -> set[str]:
    return {opt for p in params if _takes_value(p) for opt in p.opts}


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """``args`` with the group's own options that follow the command moved before it."""
    global_values = _value_options(group.params)
    global_flags = {opt for p in group.params if p.param_type_name == "option"
                    and not _takes_value(p) for opt in p.opts} - set(ctx.help_option_names)
    index = 0
    while index < len(args):  # find the command: the first word that is no option (value)
        token = args[index]
        if token == "--" or not token.startswith("-"):
            break
        index += 2 if token in global_values else 1
    if index >= len(args) or args[index] == "--":
        return args
    command = group.get_command(ctx, args[index])
    if command is None:
        return args
    command_values = _value_options(command.params)
    moved: list[str] = []
    rest: list[str] = []
    position = index + 1
    while position < len(args):
        token = args[position]
        name = token.split("=", 1)[0]
        if token == "--":
            rest.extend(args[position:])
            break
        if name in global_values or name in global_flags:
            takes = name in global_values and "=" not in token
            moved.extend(args[position:position + 1 + takes])
            position += 1 + takes
            continue
        takes = token in command_values
        rest.extend(args[position:position + 1 + takes])
        position += 1 + takes
    return [*args[:index], *moved, args[index], *rest]


def _usage_error(error: typer.TyperException) -> int:
    ctx = getattr(error, "ctx", None)
    message = error.format_message()
    if ctx is not None:
        message += f" (see: {ctx.command_path} --help)"
    render.error(message)
    return int(getattr(error, "exit_code", exit_codes.USAGE))


_SLOW = object()
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def _plain_str(value: Any) -> Any:
    return value if isinstance(value, str) else _SLOW


def _plain_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and _WHOLE.fullmatch(value) else _SLOW


def _plain_float(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, str) and _DECIMAL.fullmatch(value) else _SLOW


_PLAIN: dict[Any, Callable[[Any], Any]] = {str: _plain_str, int: _plain_int,
                                           float: _plain_float}


def _slow(value: Any) -> Any:
    return _SLOW


class _PlainCoercion:
    """A parameter's coercion for the plain cases (no value; text or a number given
    plainly); Typer's own, built on first need, for everything else."""

    def __init__(self, convert: Callable[[Any], Any], *, multiple: bool) -> None:
        self.convert = convert
        self.multiple = multiple
        self.typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # what Typer's coercion answers, without building it
            return () if self.multiple else None
        converted = self.convert(value)
        if converted is not _SLOW:
            return converted
        if self.typer is None:
            from typer._coercion import build_runtime_param

            self.typer = build_runtime_param(param.type_descriptor)
        return self.typer.coerce(value, param=param, ctx=ctx)


def plain_coercion(params: Sequence[Any]) -> None:
    """Give each parameter of ``params`` the plain coercion (see the module docstring)."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", _SLOW) is not None:
            continue  # not a Typer 0.25+ parameter, or its coercion is built already
        info = descriptor.parameter_info
        multiple = bool(param.multiple or param.nargs != 1)
        plain = not (multiple or descriptor.file_annotation is not None
                     or any(getattr(info, attr, None) is not None
                            for attr in ("min", "max", "parser", "click_type")))
        convert = _PLAIN.get(descriptor.annotation, _slow) if plain else _slow
        param._runtime_param = _PlainCoercion(convert, multiple=multiple)


class EsctlCommand(TyperCommand):
    """A command whose help names arguments by metavar and whose usage line reads plainly."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = list(super().get_params(ctx))
        plain_coercion(params)  # the help option included: Click makes it on first need
        return params

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                name = param.metavar or param.name.upper()
                arguments.append((name + ("..." if param.nargs != 1 else ""), record[1]))
            else:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class EsctlGroup(TyperGroup):
    """The top-level group: one-line usage errors, global options anywhere, exit 130.

    Its commands are :attr:`lazy_commands` (name -> ``"module:function"``), each imported
    and built only when asked for: ``esctl status`` builds one command, not eighteen, and
    imports no other command's module (``esctl --help`` builds them all, to list them).
    """

    #: The commands, in the order ``esctl --help`` lists them.
    lazy_commands: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy_commands, *(n for n in super().list_commands(ctx)
                                       if n not in self.lazy_commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.commands[cmd_name] = _build_command(cmd_name, self.lazy_commands[cmd_name])
        return super().get_command(ctx, cmd_name)

    def get_params(self, ctx: Any) -> list[Any]:
        params = list(super().get_params(ctx))
        plain_coercion(params)  # the help option included: Click makes it on first need
        return params

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            args = ["--help"]
        return list(super().parse_args(ctx, hoist_global_options(self, ctx, list(args))))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name or "esctl", complete_var,
                                standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        except typer.TyperException as e:  # Click's usage errors derive from it
            code = _usage_error(e)
        except typer.Abort:
            code = exit_codes.FAILURE
        except KeyboardInterrupt:
            code = exit_codes.INTERRUPTED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else exit_codes.OK)


def _build_command(name: str, target: str) -> Any:
    """The Click command for ``target`` (``"module:function"``), as Typer builds it."""
    import importlib

    module, _, function = target.partition(":")
    single = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False,
                         rich_markup_mode=None)
    single.command(name, cls=EsctlCommand)(getattr(importlib.import_module(module), function))
    return typer.main.get_command(single)


def at_least(minimum: int) -> Any:
    """An option callback refusing numbers below ``minimum`` (a usage error, exit 2).

    Used instead of Typer's ``min=``, whose help reads ``[x>=0]``.
    """

    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise typer.BadParameter(f"must be {minimum} or more, got {value}")
        return value

    return check
