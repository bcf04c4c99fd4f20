"""The ``publicmesh`` command: run the mesh, seed it, look into it, verify it, measure it."""

from __future__ import annotations

import base64
import json
import logging
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from publicmesh.protocol.members import MemberId
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part, parts, processes
from publicmesh.services.definition import SCHEMA_PATH, DefinitionError, load_definition, use_catalog
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for

# The imports inside commands are what only that command needs and `publicmesh --help` need not load: Polars and
# the seeding (runtime.seed, about 1.3 s), the certificate tooling (runtime.provision, 0.3 s), the member client
# (0.2 s), the staff directory, the audit verifier, the service publisher and the benchmarks (0.2-1.9 s each).

use_catalog(AGENCIES)  # what service definitions are checked against

app = typer.Typer(help="Public Service Mesh (公共サービスメッシュ)", no_args_is_help=True)
audit_app = typer.Typer(help="The exchange record log (情報提供等記録)", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print ratios against a baseline in the same run", no_args_is_help=True)
services_app = typer.Typer(help="Public services (公共サービス) defined in YAML", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")
app.add_typer(services_app, name="services")
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _seed(residents: int, seed_value: int, fresh: bool) -> None:
    from publicmesh.runtime.provision import provision
    from publicmesh.runtime.seed import fresh_stores, seed

    settings = get_settings()
    if fresh:
        fresh_stores(settings)
    provision(settings)
    with _progress() as progress:
        task = progress.add_task("Seeding residents", total=residents)
        result = seed(settings, residents, municipalities(), seed_value, lambda n: progress.advance(task, n))
    console.print(f"Seeded {result['residents']:,} residents in {result['seconds']} s into {settings.data_dir}")


@app.command("seed")
def seed_command(
    residents: int = typer.Option(None, help="Number of residents (default: PUBLICMESH_RESIDENTS or 20,000)"),
    seed: int = typer.Option(None, help="Random seed; the same seed gives the same population"),
    fresh: bool = typer.Option(False, "--fresh", help="Drop every agency store and the audit log first"),
):
    """Generate the synthetic population and write it to every agency's own store."""
    from publicmesh.runtime.seed import is_seeded

    settings = get_settings()
    if is_seeded(settings) and not fresh:
        console.print("[red]The stores already hold a population; use --fresh to replace it.[/red]")
        raise typer.Exit(1)
    _seed(residents or settings.residents, settings.seed if seed is None else seed, fresh)


@app.command()
def up(
    residents: int = typer.Option(None, help="Residents to seed when the stores are empty"),
    fresh: bool = typer.Option(False, "--fresh", help="Re-seed even if a population exists"),
):
    """Start every part on localhost (numbers, hub, agency nodes), seeding first if the stores are empty."""
    from publicmesh.runtime.seed import is_seeded

    settings = get_settings()
    if fresh or not is_seeded(settings):
        _seed(residents or settings.residents, settings.seed, fresh)
    else:
        from publicmesh.runtime.provision import provision

        provision(settings)
    with Supervisor(settings) as supervisor:
        with console.status("Starting the parts…"):
            supervisor.start()
        table = Table(title="Public Service Mesh is running (Ctrl-C stops it)")
        table.add_column("part")
        table.add_column("URL")
        table.add_column("members")
        for p in processes(settings):  # the parts, or their replicas and the proxy in front of them
            table.add_row(
                p.name, p.url(settings), ", ".join(str(m) for m in p.members[:3]) + (" …" if len(p.members) > 3 else "")
            )
        console.print(table)
        hub = next(p for p in parts(settings) if p.name == "hub").url(settings)
        console.print(f"Hub API docs: {hub}/docs   catalog: {hub}/v1/catalog   checkpoint: {hub}/v1/audit/checkpoint")
        witness = part(settings, "witness").url(settings)
        console.print(f"Witness (cosigns the audit checkpoints): {witness}   latest cosigned: {witness}/v1/checkpoint")
        console.print("Try: publicmesh subjects --member MUNI/012084/child-allowance, then publicmesh query …")
        _print_demo_logins(settings)
        # A part that dies is started again (with backoff) while the others keep serving; each restart is logged.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        supervisor.watch()
        signal.signal(signal.SIGTERM, _interrupt)  # stopped as by Ctrl-C: the parts stop, none is restarted
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("Stopping…")


def _print_demo_logins(settings) -> None:
    """How a newcomer logs in: the portal's demo cards (listed on its login page) and the console's demo staff."""
    from publicmesh.runtime.demo import AUTH_PIN, SIGNING_PASSWORD

    portal, staff = part(settings, "portal").url(settings), part(settings, "console").url(settings)
    console.print(
        f"Resident portal: {portal}  — choose a demo card on the login page; PIN {AUTH_PIN}, "
        f"signing password {SIGNING_PASSWORD} (DEMO ONLY)"
    )
    path = settings.data_dir / "demo-staff.json"
    accounts = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    if accounts:
        first = accounts[0]
        console.print(
            f"Staff console: {staff}  — e.g. {first['username']} / {first['password']}; every demo account and "
            "its current 6-digit code: publicmesh staff demo"
        )
    else:
        console.print(f"Staff console: {staff}  — add an account with publicmesh staff add")


@app.command("witness")
def witness_command():
    """Run the witness (証人) alone, on this mesh's witness port: it cosigns the audit log's checkpoints, each only if
    consistent with the last one it cosigned. It reads the log's public key from the keys folder (keys/audit.pub)
    and keeps its own key (keys/witness/) and store. `publicmesh up` runs it as one of the parts."""
    from publicmesh.runtime.serve import main

    main(["witness"])


@app.command("chaos")
def chaos_command(
    trials: int = typer.Option(20, help="How many processes to kill, one every --every seconds"),
    every: float = typer.Option(3.0, help="Seconds between kills"),
    residents: int = typer.Option(2000, help="Residents of the trials' own mesh"),
    base_port: int = typer.Option(9950, help="Where the trials' mesh listens (its parts take the next 130 ports)"),
    seed_value: int = typer.Option(7, "--seed", help="Which processes are killed, in which order"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
):
    """Fault trials: a mesh of its own (two hub and two portal replicas behind HAProxy, two publisher workers)
    under load while a random process is killed with SIGKILL every few seconds; then counts what was lost or
    doubled, verifies the audit log, and reports the load's errors and the seconds to recover."""
    from publicmesh.runtime.chaos import run

    result = run(
        trials,
        residents_count=residents,
        every_s=every,
        base_port=base_port,
        seed_value=seed_value,
        say=(lambda _: None) if as_json else console.print,
    )
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"Fault trials: {result['trials']} kills")
    for column in ("lost", "duplicates", "verify", "errors_pct", "recover_s_max", "eligible", "publishes"):
        table.add_column(column)
    table.add_row(
        *(
            str(result[c])
            for c in ("lost", "duplicates", "verify", "errors_pct", "recover_s_max", "eligible", "publishes")
        )
    )
    console.print(table)
    if result["lost"] or result["duplicates"] or result["verify"] != "ok":
        raise typer.Exit(1)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _hub_url() -> str:
    settings = get_settings()
    return part(settings, "hub").url(settings)


@app.command()
def catalog(member: str | None = typer.Option(None, "--as", help="Show what this member may use")):
    """List members, datasets and attributes (and what --as may use, for which affair)."""
    try:
        listing = httpx.get(
            _hub_url() + "/v1/catalog", params={"consumer": member} if member else None, timeout=10
        ).json()
    except httpx.HTTPError as exc:
        console.print(f"[red]The hub is not reachable ({exc}); start it with: publicmesh up[/red]")
        raise typer.Exit(1) from exc
    for provider in listing:
        table = Table(title=f"{provider['member']} — {provider['title_ja']}", show_lines=False)
        for column in ("dataset", "attributes", "allowed for " + (member or "—")):
            table.add_column(column)
        for d in provider["datasets"]:
            allowed = sorted({a["affair"] for a in d.get("allowed", [])})
            table.add_row(
                f"{d['name']} ({d['title_ja']})", ", ".join(a["name"] for a in d["attributes"]), ", ".join(allowed)
            )
        console.print(table)


@app.command()
def subjects(
    member: str = typer.Option(..., help="An agency member, e.g. MUNI/012084/child-allowance"),
    limit: int = typer.Option(5),
):
    """Show a few pseudonyms this agency holds (read from the agency's own store, as its clerk would)."""
    m = MemberId.parse(member)
    agency = AGENCIES[m.system]
    dataset = next(iter(agency.datasets.values()))
    table = dataset.table if dataset.table is not None else agency.metadata.tables["residents"]
    query = select(table.c.pseudonym).limit(limit)
    if agency.municipal:
        query = query.where(table.c.tenant == m.code)
    with engine_for(m.system).connect() as conn:
        for row in conn.execute(query):
            console.print(row.pseudonym)


@app.command()
def query(
    member: str = typer.Option(..., "--as", help="The consumer member, e.g. MUNI/012084/child-allowance"),
    provider: str = typer.Option(..., help="e.g. MUNI/012084/resident-registry"),
    dataset: str = typer.Option(...),
    subject: str = typer.Option(..., help="The subject under the consumer's own pseudonym"),
    attributes: str = typer.Option(..., help="Comma-separated attribute names"),
    purpose: str = typer.Option(..., help="The affair, e.g. child-allowance-eligibility"),
):
    """Run one query through the hub as a member; prints the answer and its audit record id."""
    from publicmesh.protocol.client import HubError, MeshClient

    client = MeshClient.for_member(get_settings(), member, _hub_url())
    try:
        answer = client.query(provider, dataset, subject, [a.strip() for a in attributes.split(",")], purpose)
    except HubError as exc:
        console.print_json(orjson.dumps(exc.problem).decode())
        raise typer.Exit(2) from exc
    except httpx.HTTPError as exc:
        console.print(f"[red]The hub is not reachable ({exc}); start it with: publicmesh up[/red]")
        raise typer.Exit(1) from exc
    console.print_json(orjson.dumps(answer).decode())
    console.print(f"audit record: {answer['audit_record']}")


@audit_app.command("verify")
def audit_verify(
    witness: list[str] = typer.Option(
        None, "--witness", help="A witness's URL (repeatable; default: this mesh's witness, or its store when down)"
    ),
):
    """Check the whole log: every record against its leaf, every checkpoint root and signature, and that the log
    still holds the latest checkpoint each witness cosigned (asked of the witness: the hub cannot cut it back)."""
    from publicmesh.audit import verify_store

    settings = get_settings()
    witnessed, failed = [], False
    for source, found in _witnessed(settings, witness or []):
        if isinstance(found, str):
            console.print(f"[yellow]witness[/yellow] {escape(source)}: {escape(found)}", soft_wrap=True)
            failed = failed or found.startswith("FAILED")
            continue
        witnessed.append(found)
        console.print(f"witness {escape(source)}: cosigned size {found.tree_size:,} ({found.timestamp})")
    try:
        with console.status("Verifying the exchange record log…"):
            report = verify_store(settings, witnessed=witnessed)
    except FileNotFoundError as missing:  # a mesh seeded but never started: the hub makes the log's key
        console.print(
            f"[red]No audit log to verify[/red] ({escape(str(missing))}): start the mesh once (publicmesh up)."
        )
        raise typer.Exit(2) from None
    if report.ok and not failed:
        held = f"; the log holds the {len(witnessed)} witnessed checkpoint(s)" if witnessed else ""
        console.print(f"[green]OK[/green]: {report.tree_size:,} records; every checkpoint verifies{held}.")
        return
    for problem in report.problems[:50]:
        where = f"position {problem.position}" if problem.position is not None else "log"
        console.print(f"[red]{where}[/red]: {problem.kind} — {problem.detail}")
    console.print(f"[red]FAILED[/red]: first bad position {report.first_bad_position}")
    raise typer.Exit(1)


def _witnessed(settings: Settings, urls: list[str]):
    """(where, the checkpoint a witness cosigned, or a note) per witness; a note starting with FAILED fails verify.
    This mesh's witness, when it does not answer, is read from its own store."""
    from publicmesh.audit import Checkpoint, Cosignature
    from publicmesh.audit.keys import load_witness_public_key
    from publicmesh.audit.log import DEFAULT_LOG_ID
    from publicmesh.witness.core import WITNESS_NAME
    from publicmesh.witness.store import WitnessStore

    own = part(settings, "witness").url(settings)
    for url in urls or [own]:
        try:
            answer = httpx.get(url + "/v1/checkpoint", params={"log_id": DEFAULT_LOG_ID}, timeout=10)
            if answer.status_code == 404:
                yield url, "has cosigned no checkpoint of this log yet"
                continue
            answer.raise_for_status()
            doc = answer.json()
            checkpoint, cosignature = Checkpoint.from_dict(doc["checkpoint"]), Cosignature.from_dict(doc["cosignature"])
            key = (
                load_witness_public_key(settings.keys_dir)
                if url == own
                else _public_key(httpx.get(url + "/v1/key", timeout=10).json()["public_key_pem"])
            )
        except httpx.HTTPError as exc:
            if url != own:
                yield url, f"FAILED: not reachable ({exc})"
                continue
            engine = engine_for("witness", settings)
            try:
                found = WitnessStore(engine, WITNESS_NAME).latest(DEFAULT_LOG_ID)
            finally:
                engine.dispose()
            if found is None:
                yield url, "not reachable, and its store holds no cosigned checkpoint"
                continue
            (checkpoint, cosignature), key = found, load_witness_public_key(settings.keys_dir)
            url = f"{url} (down; read from its store)"
        except (ValueError, KeyError, TypeError, OSError) as exc:
            yield url, f"FAILED: its answer or key cannot be read ({exc})"
            continue
        if not cosignature.verify(key, checkpoint):
            yield url, f"FAILED: its cosignature of size {checkpoint.tree_size} does not verify under its key"
            continue
        yield url, checkpoint


def _public_key(pem: str):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_public_key(pem.encode())


PASSPHRASE_ENV = "PUBLICMESH_BACKUP_PASSPHRASE"


def _passphrase(confirm: bool) -> str:
    """From PUBLICMESH_BACKUP_PASSPHRASE, else asked for (hidden); an empty one is refused."""
    import os

    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase is None:
        passphrase = typer.prompt(
            "Passphrase for the keys", hide_input=True, confirmation_prompt=confirm, default="", show_default=False
        )
    if not passphrase:
        console.print(f"[red]An empty passphrase is refused: give one at the prompt or in {PASSPHRASE_ENV}.[/red]")
        raise typer.Exit(2)
    return passphrase


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


@app.command("backup")
def backup_command(directory: Path = typer.Argument(..., help="A new (or empty) folder for the backup")):
    """Back up every store and the keys (encrypted under a passphrase), safe while the mesh runs.

    SQLite's online backup or pg_dump per store, and a manifest naming the signed audit checkpoint the backup holds."""
    from publicmesh.runtime.backup import BackupError, backup

    passphrase = _passphrase(confirm=True)
    try:
        with _progress() as progress:
            task = progress.add_task("Backing up", total=None)

            def step(what: str, done: int, total: int) -> None:
                progress.update(task, description=f"Backing up {what}", completed=done, total=total)

            outcome = backup(get_settings(), directory, passphrase, step)
    except BackupError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    checkpoint = outcome.manifest["checkpoint"]
    held = f"; audit checkpoint at size {checkpoint['tree_size']:,}" if checkpoint else ""
    console.print(
        f"Backed up {len(outcome.manifest['stores'])} stores and the keys into {escape(str(directory))}: "
        f"{_size(outcome.size_bytes)} in {outcome.seconds:.2f} s{held}"
    )


@app.command("restore")
def restore_command(
    directory: Path = typer.Argument(..., help="A folder made by publicmesh backup"),
    force: bool = typer.Option(False, "--force", help="Replace the stores and keys that exist"),
):
    """Restore a backup while the mesh is stopped; prints the seconds it took (the recovery time).

    Checks every file's sha256 and the passphrase before writing anything, then that the audit log verifies and holds
    the manifest's checkpoint."""
    from publicmesh.runtime.backup import BackupError, restore

    passphrase = _passphrase(confirm=False)
    try:
        with _progress() as progress:
            task = progress.add_task("Restoring", total=None)

            def step(what: str, done: int, total: int) -> None:
                progress.update(task, description=f"Restoring {what}", completed=done, total=total)

            outcome = restore(get_settings(), directory, passphrase, force=force, progress=step)
    except BackupError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    verified = outcome.manifest["verified"]
    records = verified["audit_records"]
    held = (
        f"holding the backup's checkpoint at size {verified['checkpoint']:,}"
        if isinstance(verified["checkpoint"], int)
        else "the backup named no checkpoint (no audit log yet)"
    )
    console.print(
        f"Restored {len(outcome.manifest['stores'])} stores and the keys ({_size(outcome.size_bytes)}) in "
        f"{outcome.seconds:.2f} s (RTO). The audit log verifies: {records:,} record{'' if records == 1 else 's'}, "
        f"{held}."
    )


def _load_service(path: Path):
    """A definition file checked as every services command checks it; prints the problems and exits 1."""
    try:
        return load_definition(path)
    except DefinitionError as exc:
        for problem in exc.problems:
            console.print(f"[red]✗[/red] {escape(problem.format(str(path)))}", soft_wrap=True)
    except OSError as exc:
        console.print(f"[red]✗[/red] {escape(str(path))}: {escape(exc.strerror or str(exc))}", soft_wrap=True)
    return None


@services_app.command("validate")
def services_validate(files: list[Path] = typer.Argument(..., help="Service definition files (YAML)")):
    """Check definition files: YAML, the schema, the agencies' catalog and the names used in the rules."""
    failed = 0
    for path in files:
        definition = _load_service(path)
        if definition is None:
            failed += 1
            continue
        console.print(
            f"[green]✓[/green] {escape(str(path))}: {definition.id} v{definition.version} "
            f"({escape(definition.title.ja)})",
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(1)


@services_app.command("publish")
def services_publish(
    file: Path = typer.Argument(..., help="A service definition (YAML)"),
    queue: bool = typer.Option(
        False, "--queue", help="One job per municipality for the publisher workers (publicmesh services worker)"
    ),
):
    """Validate, evaluate eligibility for every resident through the hub, send the notices, apply for people with
    a prior intent, decide, and write the payout files. Safe to run again: only what is new is created."""
    from publicmesh.services.operator import print_summary, publish_file, publish_file_queued

    if _load_service(file) is None:
        raise typer.Exit(1)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = (publish_file_queued if queue else publish_file)(get_settings(), file, progress)
    print_summary(summary, console)


@services_app.command("worker")
def services_worker(
    until_idle: bool = typer.Option(False, "--until-idle", help="Stop when no job is waiting"),
):
    """A publisher worker: takes one municipality's job at a time from `services publish --queue` runs, on this
    machine or any other sharing the services store, until stopped (Ctrl-C). A worker killed mid-job loses
    nothing: its job is taken again when its lease ends, and nothing is offered or announced twice."""
    from publicmesh.services.operator import run_worker

    console.print("publisher worker: waiting for jobs (Ctrl-C stops)" if not until_idle else "publisher worker")
    done = run_worker(get_settings(), until_idle=until_idle)
    console.print(f"municipalities done: {done}")


@services_app.command("schema")
def services_schema():
    """Print the JSON schema of a service definition (draft 2020-12)."""
    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))


staff_app = typer.Typer(help="Staff accounts of the staff console (職員用画面)", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


def _staff_directory():
    from publicmesh.console.staff import StaffDirectory

    settings = get_settings()
    return StaffDirectory.open(engine_for("services", settings), settings.keys_dir)


@staff_app.command("add")
def staff_add(
    username: str = typer.Argument(..., help="3–64 characters of a–z, 0–9, '.', '_' and '-'"),
    municipality: str = typer.Option(
        "", help="The 6-digit local government code, e.g. 012084 (Kitami); none for an operator"
    ),
    role: list[str] = typer.Option(
        ...,
        help="reviewer or approver (municipal; repeat for both), or operator "
        "(national: publishes services from the console)",
    ),
):
    """Add a staff member (asks for the password, at least 12 characters); prints the TOTP secret and the
    otpauth:// URI for their authenticator app, once."""
    from publicmesh.console.staff import StaffError, check_roles, provisioning_uri

    try:
        check_roles(municipality, set(role))  # before asking for a password
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    # Asked for, never an option: a password on the command line stays in the shell's history.
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        secret = _staff_directory().create_staff(municipality, username, password, set(role))
    except (ValueError, StaffError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(
        f"Added {username} ({', '.join(sorted(set(role)))}) for {municipality or 'the whole country'}. "
        "Show these once, to them only; they are not kept in the clear:"
    )
    console.print(f"TOTP secret: {secret}")
    console.print(provisioning_uri(username, secret), soft_wrap=True, markup=False)


@staff_app.command("unlock")
def staff_unlock(username: str = typer.Argument(...)):
    """Clear the failed-login count of a locked account."""
    if not _staff_directory().unlock(username):
        console.print(f"[red]No staff account {username}[/red]")
        raise typer.Exit(1)
    console.print(f"Unlocked {username}")


@staff_app.command("demo")
def staff_demo():
    """The demo staff accounts made at seeding (data_dir/demo-staff.json) with their current 6-digit codes."""
    from publicmesh.console.staff import totp

    settings = get_settings()
    path = settings.data_dir / "demo-staff.json"
    if not path.exists():
        console.print(
            f"[red]{path} does not exist: a seed makes the demo accounts (publicmesh up --fresh), "
            "or add one with publicmesh staff add[/red]"
        )
        raise typer.Exit(1)
    table = Table(title=f"Demo staff of the console at {part(settings, 'console').url(settings)} (DEMO ONLY)")
    for column in ("username", "municipality", "role", "password", "code now"):
        table.add_column(column)
    for a in json.loads(path.read_text(encoding="utf-8")):
        secret = base64.b32decode(a["totp_secret"] + "=" * (-len(a["totp_secret"]) % 8))
        table.add_row(
            a["username"],
            f"{a['municipality']} {a['municipality_name']}".strip(),
            ", ".join(a["roles"]),
            a["password"],
            totp(secret, time.time()),
        )
    console.print(table)


@bench_app.command("exchange")
def bench_exchange(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    seconds: float = typer.Option(10.0, help="Measuring time per phase"),
    concurrency: int = typer.Option(32),
    residents: int = typer.Option(20_000),
):
    """Signed queries at the given concurrency: directly to a provider, then through the hub, in one run."""
    from publicmesh.bench.exchange import run

    result = run(
        seconds=seconds, concurrency=concurrency, residents=residents, progress=None if as_json else console.print
    )
    if as_json:
        print(json.dumps(result))
    else:
        console.print_json(json.dumps(result))


@bench_app.command("events")
def bench_events(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    events: int = typer.Option(50_000, help="Events published flat out"),
    rate: int = typer.Option(10_000, help="Offered events/s for the lag at a steady rate"),
    seconds: float = typer.Option(5.0, help="How long the steady rate is offered"),
    nats_url: str = typer.Option("", help="A NATS server with JetStream; empty: start Debian's nats-server"),
):
    """Events/s from publish to subscriber ack and the lag (p50, p99): the embedded transport and JetStream."""
    from publicmesh.bench.events import run

    result = run(
        events=events, rate=rate, seconds=seconds, nats_url=nats_url, progress=None if as_json else console.print
    )
    if as_json:
        print(json.dumps(result))
    else:
        console.print_json(json.dumps(result))


@bench_app.command("portal")
def bench_portal(runs: int = typer.Option(200), residents: int = typer.Option(20_000)):
    """Server time of a card login and of わたしの情報 (p50, p99), and hub exchanges per page view."""
    from publicmesh.bench.portal import run

    print(json.dumps(run(runs=runs, residents=residents)))


@bench_app.command("services")
def bench_services(
    residents: int = typer.Option(1_000_000, help="Residents of the synthetic population"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    openfisca: bool = typer.Option(True, help="Also run the same rule in OpenFisca on the same persons"),
    browser: bool = typer.Option(True, help="Also drive the resident path in headless chromium"),
    workers: int = typer.Option(0, help="Publish as jobs for this many publisher worker processes (0: in-process)"),
):
    """Publish the emergency benefit to every resident on a running mesh: seconds by phase, peak memory, audit
    records per subject; the same rule in OpenFisca; the resident path from notice to application."""
    from publicmesh.bench.services import run

    say = None if as_json else console.print
    result = run(residents, openfisca=openfisca, browser=browser, progress=say, workers=workers)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        console.print_json(json.dumps(result, ensure_ascii=False))


@bench_app.command("population")
def bench_population(
    residents: int = typer.Option(1_000_000),
    stores: bool = typer.Option(True, help="Also seed every agency's store (SQLite in a temporary folder)"),
):
    """Generation time and peak memory, streamed; then the time to enrol and write it to every store."""
    from publicmesh.population.bench import bench
    from publicmesh.runtime.provision import provision
    from publicmesh.runtime.seed import seed

    result = {"generate": bench(residents, materialise=False)}
    if stores:
        with tempfile.TemporaryDirectory(prefix="publicmesh-seed-") as tmp:
            settings = Settings(data_dir=Path(tmp))
            provision(settings)
            result["seed"] = seed(settings, residents, municipalities(), 1)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    app()
