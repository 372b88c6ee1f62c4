"""``genrebench list``: the feature sets, model families, protocols and configs there are."""

from __future__ import annotations

import click

from benchmark.cli._console import _handle_errors, out


@click.command("list")
@_handle_errors
def list_components() -> None:
    """List feature sets, model families, protocols and configs."""
    from benchmark.features import all_feature_sets
    from benchmark.models import all_families
    from benchmark.paths import configs_dir
    from benchmark.protocols import all_protocols

    out.print(
        "[bold]feature sets[/]: "
        + ", ".join(f"{n} ({'/'.join(c.input_kinds)})" for n, c in all_feature_sets().items())
    )
    out.print("[bold]families[/]:")
    for name, fam in all_families().items():
        skip = fam.skip_reason()
        out.print(
            f"  {name:<14} {fam.input_kind:<8} {fam.description}"
            + (f" [dim](skipped: {skip})[/]" if skip else ""),
            highlight=False,
        )
    out.print("[bold]protocols[/]:")
    for name, proto in all_protocols().items():
        out.print(f"  {name:<17} {proto.description}", highlight=False)
    out.print(
        "[bold]configs[/]: " + ", ".join(sorted(p.stem for p in configs_dir().glob("*.yaml")))
    )
