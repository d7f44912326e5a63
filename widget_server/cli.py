"""The ``funnelcake`` program: Flask's CLI (``run``, ``db``) plus Funnelcake's own commands."""

import click
from flask.cli import FlaskGroup

from . import create_app
from .commands import commands


@click.group(cls=FlaskGroup, create_app=lambda: create_app())
def cli():
    """Funnelcake: survey and spin-the-wheel popups with A/B tests and a loyalty funnel."""


for command in commands.commands.values():
    cli.add_command(command)


def main():
    cli(prog_name="funnelcake")
