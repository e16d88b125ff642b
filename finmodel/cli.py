"""The ``finmodel`` command line. Bad input: one line per problem on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable, Sequence

import pandas as pd

import finmodel
from finmodel.errors import Problem, ScenarioError
from finmodel.scenario import field_rows, write_text_atomic

__all__ = ["assumptions_table", "main"]

EXIT_BAD_INPUT = 2


def assumptions_table(sc: finmodel.Scenario) -> pd.DataFrame:
    """One row per input: field, value, unit, description, source."""
    rows = [
        {"field": r.path, "value": r.display_value, "unit": r.unit,
         "description": r.description, "source": r.source}
        for r in field_rows(sc)
        if (not r.path.endswith(("name", "description")) or r.path.startswith(("factories", "tranches")))
        and not r.path.startswith("correlation.")
    ]
    return pd.DataFrame(rows, columns=["field", "value", "unit", "description", "source"])


PRESET_OUTCOMES = (  # (KPI, statistic, column heading, format)
    ("equity_irr", "p50", "P50 equity IRR", "{:.1%}"),
    ("any_payment_default", "mean", "P(payment default, any site)", "{:.0%}"),
    ("any_eib_loss", "mean", "P(EIB loss, any site)", "{:.0%}"),
    ("eib_loss_eur_m", "mean", "EIB expected loss (EUR m)", "{:,.0f}"),
    ("private_per_public", "p50", "P50 private per public EUR", "{:.2f}"),
)


def preset_outcomes_table(paths: int = 1_000, seed: int = 0) -> pd.DataFrame:
    """What each shipped preset shows: a few portfolio outcomes of ``simulate(preset, paths,
    seed)`` (the same draws for the inputs the presets share), one row per preset."""
    rows = []
    for name in finmodel.list_scenarios():
        summary = finmodel.simulate(finmodel.load_scenario(name), paths=paths, seed=seed,
                                    factory_kpis=False).summary()
        rows.append({"preset": f"`{name}`", **{heading: fmt.format(summary.loc[kpi, stat])
                                              for kpi, stat, heading, fmt in PRESET_OUTCOMES}})
    return pd.DataFrame(rows)


def correlation_table(sc: finmodel.Scenario) -> pd.DataFrame:
    """The target rank-correlation matrix labelled by input path."""
    names = sc.correlation.inputs
    return pd.DataFrame(sc.correlation.matrix, index=names, columns=range(len(names)))


def markdown_table(df: pd.DataFrame) -> str:
    """GitHub markdown table without the optional tabulate dependency."""
    def cell(x: object) -> str:  # "[S32][S66]" is text, not a reference-style link
        return str(x).replace("|", "\\|").replace("[", "\\[").replace("\n", " ")

    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def text_table(df: pd.DataFrame) -> str:
    """Left-aligned plain-text table; the last column is never padded or cut."""
    cells = [list(map(str, df.columns))] + [[str(v) for v in row] for row in df.itertuples(False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(df.columns) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]) for r in cells]
    lines.insert(1, "  ".join(["-" * w for w in widths] + ["-" * len(cells[0][-1])]))
    return "\n".join(line.rstrip() for line in lines)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    for name in finmodel.list_scenarios():
        sc = finmodel.load_scenario(name)
        text = sc.description if len(sc.description) <= 90 else sc.description[:89] + "…"
        print(f"{name:<20} {sc.n_factories:>2} sites  {text}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    sc = finmodel.load_scenario(args.scenario)
    table = assumptions_table(sc)
    if args.format == "markdown":
        print(markdown_table(table))
        return 0
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
        return 0
    print(f"{sc.name}: {sc.description}\n")
    cols = ["field", "value", "unit", "source"] + (["description"] if args.long else [])
    print(text_table(table[cols]))
    corr = correlation_table(sc)
    if not corr.empty:
        source = sc.correlation.sources.get("matrix", "")
        print(f"\nrank correlation among uncertain inputs ({source}):")
        print(corr.to_string(float_format=lambda x: f"{x:.2f}"))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.paths:
        try:
            sc = finmodel.load_scenario(path)
        except ScenarioError as exc:
            bad += 1
            _print_problems(exc, str(path))
            continue
        print(f"{path}: OK ({sc.name}, {sc.n_factories} factories, "
              f"{len(sc.uncertain_inputs())} uncertain inputs)")
    return EXIT_BAD_INPUT if bad else 0


def _cmd_base(args: argparse.Namespace) -> int:
    res = finmodel.base_case(finmodel.load_scenario(args.scenario))
    factories = [f.name for f in res.scenario.factories]
    if args.factory not in (None, "portfolio", *factories):
        raise ScenarioError(Problem("--factory", args.factory, f"no such factory; choose from "
                                    f"portfolio, {', '.join(factories)}"))
    if args.csv:
        write_text_atomic(args.csv, res.cashflow_table().to_csv(index=False))
        print(f"wrote {args.csv}", file=sys.stderr)
    wide = res.cashflow_wide(factory=args.factory or "portfolio")
    print(f"{res.scenario.name}: base case (central values), {args.factory or 'portfolio'}, EUR m\n")
    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.float_format", lambda x: f"{x:,.1f}"):
        print(wide.to_string())
        print("\nfactory KPIs")
        print(res.factory_kpis.drop(columns="path").set_index("factory").T.to_string())
        print("\nportfolio KPIs")
        print(res.summary()[["unit", "mean"]].rename(columns={"mean": "value"}).to_string())
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = -1

    def __call__(self, done: int, total: int) -> None:
        share = done / total
        if self.tty:
            filled = int(30 * share)
            print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} {done:,}/{total:,} paths",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif int(share * 10) > self.last:
            self.last = int(share * 10)
            print(f"{share:4.0%} {done:,}/{total:,} paths", file=sys.stderr, flush=True)


def _cmd_run(args: argparse.Namespace) -> int:
    from finmodel.report import write_run

    sc = finmodel.load_scenario(args.scenario)
    res = finmodel.simulate(sc, paths=args.paths, seed=args.seed, method=args.method,
                            chunk_size=args.chunk_size, progress=_ProgressBar(),
                            factory_kpis=not args.no_factory_kpis)
    print(f"{sc.name}: {res.n_paths:,} paths, method {res.method}, seed {res.seed}\n")
    cols = ["unit", "mean", "sem", "p5", "p10", "p50", "p90", "p95"]
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.float_format", lambda x: f"{x:,.4g}"):
        print(res.summary()[cols].to_string())
        print("\nloss risk, EUR m")
        print(res.risk().to_string())
        if len(sc.tranches) > 1:
            print("\nfund tranches (mean; loss = probability of a loss)")
            print(res.tranche_summary()["mean"].unstack("kpi").to_string())
    if args.out:
        out = write_run(res, args.out)
        print(f"\nwrote {out}/ (summary.csv, risk.csv, path_kpis.csv, factory_kpis.csv, "
              f"tranche_kpis.csv, inputs.csv, fan.csv, scenario.toml, report.html)", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    scenarios = [finmodel.load_scenario(name) for name in args.scenarios]
    stats = [s.strip() for s in args.stats.split(",") if s.strip()]
    table = finmodel.compare(scenarios, paths=args.paths, seed=args.seed, method=args.method,
                             stats=stats)
    if args.csv:
        write_text_atomic(args.csv, table.to_csv())
        print(f"wrote {args.csv}", file=sys.stderr)
    print(f"{len(scenarios)} scenarios, {args.paths:,} paths each, seed {args.seed}\n")
    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.max_rows", None, "display.float_format", lambda x: f"{x:,.4g}"):
        print(table.to_string())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    sc = finmodel.load_scenario(args.scenario)
    res = None
    if args.paths:
        res = finmodel.simulate(sc, paths=args.paths, seed=args.seed, method=args.method,
                                progress=_ProgressBar())
    selected = tuple(s.strip() for s in args.selected.split(",") if s.strip())
    out = finmodel.export_excel(sc, args.out, results=res, selected=selected)
    print(f"wrote {out} ({sc.n_factories} factory sheets, "
          f"{'base case' if res is None else selected[0] + ' path of ' + format(res.n_paths, ',')})")
    return 0


def _parse_set(spec: str) -> tuple[str, list]:
    """``eib.tenor_years=10,15,20`` -> ("eib.tenor_years", [10, 15, 20]); values are TOML."""
    field, sep, text = spec.partition("=")
    if not sep or not field.strip() or not text.strip():
        raise ScenarioError(Problem("--set", spec, "use FIELD=VALUE[,VALUE...], e.g. "
                                    "eib.tenor_years=10,15,20"), "sweep")
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(tomllib.loads(f"v = {item}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(item)  # a bare word is a string, e.g. repayment=annuity
    return field.strip(), values


def _cmd_sweep(args: argparse.Namespace) -> int:
    sc = finmodel.load_scenario(args.scenario)
    if not args.set:
        raise ScenarioError(Problem("--set", None, "give at least one FIELD=VALUE[,VALUE...]"), "sweep")
    grid = dict(_parse_set(spec) for spec in args.set)
    kpis = [k.strip() for k in args.kpis.split(",")] if args.kpis else None
    executor = None
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(args.workers)
    try:
        table = finmodel.sweep(sc, grid, paths=args.paths, seed=args.seed, method=args.method,
                               kpis=kpis, executor=executor)
    finally:
        if executor is not None:
            executor.shutdown()
    if args.out:
        write_text_atomic(args.out, table.to_csv(index=False))
        print(f"wrote {args.out}", file=sys.stderr)
    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.max_rows", None, "display.float_format", lambda x: f"{x:,.4g}"):
        print(table.to_string(index=False))
    return 0


def _cmd_calibration(args: argparse.Namespace) -> int:
    from finmodel.calibration import calibration_markdown

    text = calibration_markdown(finmodel.load_scenario(args.scenario), args.paths, args.seed)
    if args.out:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def _print_problems(exc: ScenarioError, source: str | None = None) -> None:
    where = source or exc.source
    for problem in exc.problems:
        prefix = f"{where}: " if where and where != "with_updates" else ""
        print(f"error: {prefix}{problem}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finmodel",
        description="Monte Carlo investment-and-financing model for Europe's AI gigafactories.",
    )
    parser.add_argument("--version", action="version", version=f"finmodel {finmodel.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("scenarios", help="list the shipped presets")
    p.set_defaults(func=_cmd_scenarios)

    p = sub.add_parser("show", help="print a scenario's inputs with units and sources")
    p.add_argument("scenario", help="preset name or path to a .toml file")
    p.add_argument("--format", choices=["text", "markdown", "csv"], default="text")
    p.add_argument("--long", action="store_true", help="include the description column")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("base", help="base case at central values: cash flows and KPIs")
    p.add_argument("scenario", help="preset name or path to a .toml file")
    p.add_argument("--factory", help="show one factory's cash flows instead of the portfolio")
    p.add_argument("--csv", help="also write the tidy cash-flow table (all factories) to this file")
    p.set_defaults(func=_cmd_base)

    p = sub.add_parser("run", help="Monte Carlo simulation: summary, CSV files, HTML report")
    p.add_argument("scenario", help="preset name or path to a .toml file")
    p.add_argument("--paths", type=int, default=10_000, help="number of paths (default 10,000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="lhs", help="mc, lhs (default) or sobol")
    p.add_argument("--chunk-size", type=int, default=None, help="paths per chunk (memory bound)")
    p.add_argument("--no-factory-kpis", action="store_true",
                   help="keep only per-path KPIs (for very large runs)")
    p.add_argument("--out", help="folder for the CSV files and report.html (written atomically)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compare", help="scenarios side by side (same seed and paths)")
    p.add_argument("scenarios", nargs="+", help="preset names or .toml paths")
    p.add_argument("--paths", type=int, default=10_000, help="paths per scenario (default 10,000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="lhs", help="mc, lhs (default) or sobol")
    p.add_argument("--stats", default="mean,p10,p50,p90", help="comma-separated: mean, std, sem, "
                   "p5, p10, p50, p90, p95")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("sweep", help="parameter sweep on common random numbers -> tidy CSV")
    p.add_argument("scenario", help="preset name or path to a .toml file")
    p.add_argument("--set", action="append", metavar="FIELD=V1,V2",
                   help="a swept field and its values (repeat for a full factorial)")
    p.add_argument("--paths", type=int, default=10_000, help="paths per case (default 10,000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="lhs", help="mc, lhs (default) or sobol")
    p.add_argument("--kpis", help="comma-separated path KPIs (default: all)")
    p.add_argument("--workers", type=int, default=1, help="local processes (default 1: serial)")
    p.add_argument("--out", help="write the tidy table to this CSV file (atomically)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("export", help="live-formula Excel workbook (written atomically)")
    p.add_argument("scenario", help="preset name or path to a .toml file")
    p.add_argument("out", help="the .xlsx file to write")
    p.add_argument("--paths", type=int, default=0,
                   help="simulate this many paths and include the distributions (default: base case only)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", default="lhs", help="mc, lhs (default) or sobol")
    p.add_argument("--selected", default="p50,p10,worst",
                   help="paths to pick, the first is modelled in the factory sheets: base, p50, p10, "
                        "p90, worst (default p50,p10,worst)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("calibration", help="key outputs next to public comparables (Markdown)")
    p.add_argument("scenario", nargs="?", default="base", help="preset or .toml (default base)")
    p.add_argument("--paths", type=int, default=2_000, help="paths (default 2,000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="write the report to this file (atomically), e.g. docs/calibration.md")
    p.set_defaults(func=_cmd_calibration)

    p = sub.add_parser("validate", help="check scenario files; exit 2 if any is invalid")
    p.add_argument("paths", nargs="+", help="preset names or .toml paths")
    p.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ScenarioError as exc:
        _print_problems(exc)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
