"""The `ttsfleet` command line: one entry point for every process the fleet runs.

Commands import their component inside the function so that `ttsfleet version` stays instant, the
components never load each other, and an install with one component's extra runs that component's
commands while the others answer with the `pip install` that brings theirs (`ttsfleet.extras`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape

import ttsfleet
from ttsfleet import extras
from ttsfleet.protocol.voices import DEFAULT_VOICE

app = typer.Typer(
    name="ttsfleet",
    help="A Kubernetes-operated fleet of Deepgram-compatible text-to-speech gateways.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _require(extra: extras.Extra, command: str) -> None:
    """Before `command` loads its component: a missing extra ends it with exit code 2 and one line."""
    try:
        extras.require(extra, command)
    except extras.ExtraMissing as missing:
        console.print(f"[red]{escape(str(missing))}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the ttsfleet version."""
    print(ttsfleet.__version__)


@app.command()
def emulator(
    host: Annotated[str | None, typer.Option(help="Address to listen on. [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on. [default: 8900]")] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", help="A key to accept (repeatable). Without any, every non-empty key is accepted."
        ),
    ] = None,
    handshake_delay_ms: Annotated[
        float | None, typer.Option(help="Added before an upgrade is answered. [default: 150]")
    ] = None,
    first_byte_ms: Annotated[
        float | None, typer.Option(help="From Flush to the first audio. [default: 90]")
    ] = None,
    realtime_factor: Annotated[
        float | None, typer.Option(help="Audio seconds streamed per second; 0 = unpaced. [default: 4]")
    ] = None,
    max_socket_age_s: Annotated[
        float | None, typer.Option(help="Older sockets close with 1011 NET-0003. [default: 3600]")
    ] = None,
    frame_ms: Annotated[
        float | None, typer.Option(help="Audio per binary frame, in ms. [default: 100]")
    ] = None,
    idle_timeout_s: Annotated[
        float | None, typer.Option(help="Nothing from the client this long: 1011 NET-0001. [default: 60]")
    ] = None,
    max_sockets_per_key: Annotated[
        int | None, typer.Option(help="Open sockets per key before 429; 0 = no limit. [default: 0]")
    ] = None,
    rest_headers: Annotated[
        str | None, typer.Option(help="REST metadata headers: dg or x-dg. [default: dg]")
    ] = None,
    warning_spelling: Annotated[
        str | None, typer.Option(help="Warning fields: documented, live or both. [default: both]")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="A fault for every connection, as in ?emulator_fault= (repeatable)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for request ids and jitter. [default: 0]")] = None,
    config: Annotated[Path | None, typer.Option(help="A YAML or JSON file of emulator settings.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Run the Deepgram emulator: WS and REST /v1/speak with real speech, faults and key management."""
    _require("emulator", "emulator")
    from ttsfleet.emulator import serving, settings

    values = {
        "host": host,
        "port": port,
        "api_keys": api_key or None,
        "handshake_delay_ms": handshake_delay_ms,
        "first_byte_ms": first_byte_ms,
        "realtime_factor": realtime_factor,
        "max_socket_age_s": max_socket_age_s,
        "frame_ms": frame_ms,
        "idle_timeout_s": idle_timeout_s,
        "max_sockets_per_key": max_sockets_per_key,
        "rest_header_style": rest_headers,
        "warning_spelling": warning_spelling,
        "faults": fault or None,
        "seed": seed,
    }
    try:
        emulator_settings = settings.load_settings(values, config_file=config)
    except settings.SettingsError as error:
        console.print(f"[red]invalid setting:[/red] {error}")
        raise typer.Exit(2) from None
    serving.run(emulator_settings, log_level=log_level)


@app.command()
def crd() -> None:
    """Print the TTSBackend CustomResourceDefinition (YAML), generated from the API models."""
    _require("operator", "crd")
    from ttsfleet.operator import crd as crd_module

    print(crd_module.render_crd_yaml(), end="")


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="WAV file to write.")] = Path("out.wav"),
    url: Annotated[
        str, typer.Option(envvar="TTSFLEET_URL", help="Base URL of a gateway, the emulator or Deepgram.")
    ] = "ws://127.0.0.1:8080",
    token: Annotated[
        str,
        typer.Option(
            envvar="TTSFLEET_TOKEN", help="Fleet token (a Deepgram key for Deepgram or the emulator)."
        ),
    ] = "",
    model: Annotated[
        str,
        typer.Option(
            help="Voice (aura-<voice>-<lang>); left out, the server's default: the backend's, else "
            f"Deepgram's {DEFAULT_VOICE}."
        ),
    ] = "",
    sample_rate: Annotated[int, typer.Option(help="Sample rate of the linear16 audio.")] = 24000,
    backend: Annotated[
        str | None,
        typer.Option(
            help="A backend as a TEN agent names it, <name>.<namespace>: found through its Service in the "
            "local fleet (overrides --url)."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="The local fleet's state dir (for --backend). [default: dev up's]")
    ] = None,
) -> None:
    """Speak TEXT through a speak endpoint and write it to a WAV file."""
    import asyncio

    from ttsfleet import wavfile
    from ttsfleet.protocol import Encoding, SpeakOptions, voice_problem

    _require("gateway", "say")
    from ttsfleet import client

    problem = voice_problem(model, None) if model else None
    if problem is not None:
        console.print(f"[red]--model:[/red] {problem}")
        raise typer.Exit(2)
    if backend is not None:
        _require("local-fleet", "say --backend")
        from ttsfleet.devcluster import fleet

        services = fleet.read_services(state_dir or fleet.default_state_dir())
        if backend not in services:
            known = ", ".join(sorted(services)) or "none (is `ttsfleet dev up` running?)"
            console.print(f"[red]no Service {backend!r} in the local fleet;[/red] known: {known}")
            raise typer.Exit(1)
        url = services[backend]

    options = SpeakOptions(model=model, encoding=Encoding.LINEAR16, sample_rate=sample_rate)

    async def speak() -> client.Utterance:
        async with client.SpeakClient(url, token, options) as session:
            return await session.speak(text)

    try:
        utterance = asyncio.run(speak())
    except client.SpeakFailed as failure:
        console.print(f"[red]speaking failed:[/red] {failure}")
        raise typer.Exit(1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(wavfile.header(Encoding.LINEAR16, sample_rate, len(utterance.audio)) + utterance.audio)
    seconds = len(utterance.audio) / (2 * sample_rate)
    first_byte = f"{utterance.first_byte_s * 1000:.0f} ms" if utterance.first_byte_s is not None else "n/a"
    console.print(f"wrote {output} ({seconds:.2f} s of audio, first byte after {first_byte})")


@app.command()
def dataplane(
    host: Annotated[str | None, typer.Option(help="Address to listen on [server.host].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [server.port].")] = None,
    pod_name: Annotated[str | None, typer.Option(help="Name reported in /statusz [server.pod_name].")] = None,
    upstream_url: Annotated[str | None, typer.Option(help="Deepgram WS base URL [upstream.url].")] = None,
    upstream_rest_url: Annotated[
        str | None, typer.Option(help="REST base URL; derived from the WS URL if unset [upstream.rest_url].")
    ] = None,
    deepgram_key_file: Annotated[
        Path | None, typer.Option(help="File holding the Deepgram key [credentials.deepgram_key_file].")
    ] = None,
    client_tokens_file: Annotated[
        Path | None, typer.Option(help="Fleet tokens, one per line [auth.client_tokens_file].")
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept clients without a fleet token.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="A YAML or JSON settings file (docs/contracts.md); also TTSFLEET_CONFIG."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [logging.level].")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="json or console [logging.format].")] = None,
) -> None:
    """Run the gateway: Deepgram-compatible /v1/speak in front of a pool of warm upstream sockets."""
    import os

    _require("gateway", "dataplane")
    from ttsfleet.dataplane import serving, settings

    given: dict[str, dict[str, object]] = {
        "server": {"host": host, "port": port, "pod_name": pod_name},
        "upstream": {"url": upstream_url, "rest_url": upstream_rest_url},
        "credentials": {"deepgram_key_file": deepgram_key_file},
        "auth": {"client_tokens_file": client_tokens_file, "enabled": False if no_auth else None},
        "logging": {"level": log_level.upper() if log_level else None, "format": log_format},
    }
    flags = {group: {k: v for k, v in values.items() if v is not None} for group, values in given.items()}
    try:
        loaded = settings.load_settings(flags, os.environ, config_file=config)
    except settings.SettingsError as error:
        console.print(f"[red]invalid setting:[/red] {error}")
        raise typer.Exit(2) from None
    serving.run(loaded, os.environ)


@app.command()
def operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", help="A namespace to serve (repeatable); none serves the whole cluster."),
    ] = None,
    liveness: Annotated[
        str | None, typer.Option(help="kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz.")
    ] = None,
    metrics_port: Annotated[
        int, typer.Option(help="Port of the operator's /metrics; 0 turns it off.")
    ] = 9090,
    probe_interval_s: Annotated[
        float, typer.Option(help="Seconds between /statusz probes of each backend.")
    ] = 10.0,
    api_server: Annotated[
        str | None, typer.Option(help="An API URL without credentials (the embedded devcluster API).")
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="A kubeconfig to log in with instead of in-cluster or $KUBECONFIG.")
    ] = None,
    rbac_recheck_s: Annotated[
        float,
        typer.Option(help="While RBAC refuses a list or watch the operator needs, seconds between checks."),
    ] = 30.0,
    all_namespaces: Annotated[
        bool,
        typer.Option("--all-namespaces", help="Serve the whole cluster (the default without --namespace)."),
    ] = False,
    cluster_domain: Annotated[str, typer.Option(help="DNS suffix of Service names in status.endpoint.")] = (
        "cluster.local"
    ),
    peering: Annotated[
        str | None, typer.Option(help="kopf peering name: a second operator with it stands by.")
    ] = None,
    priority: Annotated[int, typer.Option(help="Peering priority of this operator.")] = 100,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="Run without peering (the default).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    statusz_port_annotation: Annotated[
        str | None, typer.Option(help="Pod annotation naming the /statusz port (the local fleet sets one).")
    ] = None,
    pod_network_file: Annotated[
        Path | None,
        typer.Option(
            envvar="TTSFLEET_POD_NETWORK_FILE",
            help="Dev-only: the local fleet's pod-network table, for pod IPs this machine cannot route.",
        ),
    ] = None,
    api_max_in_flight: Annotated[
        int, typer.Option(min=1, max=1000, help="The operator's API requests in flight at once.")
    ] = 16,
    max_concurrent_reconciles: Annotated[
        int, typer.Option(min=1, max=10_000, help="Reconciles running at once; the rest wait their turn.")
    ] = 32,
    operator_namespace: Annotated[
        str | None,
        typer.Option(help="This operator's namespace: backends' NetworkPolicies admit its probes from it."),
    ] = None,
    operator_pod_label: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE, a label of this operator's pods (repeatable), for the same rule."),
    ] = None,
    dns_peers: Annotated[
        str | None,
        typer.Option(
            help="JSON list of NetworkPolicy peers serving DNS. [default: kube-dns, OpenShift, NodeLocal]"
        ),
    ] = None,
    dns_port: Annotated[
        list[int] | None, typer.Option(help="A port DNS peers answer on (repeatable). [default: 53, 5353]")
    ] = None,
) -> None:
    """Run the TTSBackend operator (kopf) against the current kubeconfig or in-cluster credentials."""
    _require("operator", "operator")
    from ttsfleet.operator import running
    from ttsfleet.operator.settings import OperatorSettings

    if all_namespaces and namespace:
        console.print("[red]invalid setting:[/red] --all-namespaces and --namespace exclude each other")
        raise typer.Exit(2)
    if standalone and peering:
        console.print("[red]invalid setting:[/red] --standalone and --peering exclude each other")
        raise typer.Exit(2)
    settings = OperatorSettings(
        namespaces=tuple(namespace or ()),
        liveness_endpoint=liveness,
        metrics_port=metrics_port,
        probe_interval_s=probe_interval_s,
        api_server=api_server,
        kubeconfig=kubeconfig,
        rbac_recheck_s=rbac_recheck_s,
        cluster_domain=cluster_domain,
        peering_name=peering,
        priority=priority,
        log_level=log_level,
        statusz_port_annotation=statusz_port_annotation,
        pod_network_file=pod_network_file,
        api_max_in_flight=api_max_in_flight,
        max_concurrent_reconciles=max_concurrent_reconciles,
        operator_namespace=operator_namespace,
        operator_pod_labels=_key_values(operator_pod_label or ()),
        **({"dns_peers": _json_list(dns_peers, "--dns-peers")} if dns_peers else {}),
        **({"dns_ports": tuple(dns_port)} if dns_port else {}),
    )
    running.run(settings)


def _key_values(pairs: Iterable[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            console.print(f"[red]invalid setting:[/red] {pair!r} is not KEY=VALUE")
            raise typer.Exit(2)
        found[key] = value
    return found


def _json_list(text: str, option: str) -> tuple[dict[str, Any], ...]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        console.print(f"[red]invalid setting:[/red] {option} is not JSON: {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        console.print(f"[red]invalid setting:[/red] {option} must be a JSON list of objects")
        raise typer.Exit(2)
    return tuple(value)


dev = typer.Typer(
    name="dev",
    help="The local fleet on this machine: a Kubernetes control plane, node agent, emulator and operator.",
    no_args_is_help=True,
)
app.add_typer(dev)


StateDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Where the fleet keeps its state. [default: $TTSFLEET_DEV_STATE_DIR or ~/.local/state]"
    ),
]


@dev.command("up")
def dev_up(
    state_dir: StateDirOption = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background and return.")] = False,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the embedded API. [default: a free one]")
    ] = None,
    operator: Annotated[bool, typer.Option(help="Run the operator when this build has one.")] = True,
    instant: Annotated[
        bool, typer.Option("--instant", help="Emulator without latency (tests); default imitates a region.")
    ] = False,
    control_plane: Annotated[
        str,
        typer.Option(
            help="real (built by `make controlplane`), embedded (no Go needed) or auto: real when built."
        ),
    ] = "auto",
) -> None:
    """Bring the local fleet up: in the foreground with live status, or detached (`--detach`)."""
    _require("local-fleet", "dev up")
    from ttsfleet.devcluster import fleet, status
    from ttsfleet.devcluster.controlplane import binaries

    if control_plane not in ("auto", "real", "embedded"):
        console.print(
            f"[red]invalid setting:[/red] --control-plane {control_plane!r}: real, embedded or auto"
        )
        raise typer.Exit(2)
    try:
        kind, line = fleet.resolve_control_plane(cast("fleet.ControlPlaneChoice", control_plane))
    except binaries.MissingControlPlane as missing:
        console.print(f"[red]--control-plane real:[/red] {missing}")
        raise typer.Exit(1) from None
    console.print(line, highlight=False)
    if kind == "embedded":
        _require_embedded_api()
    else:
        from ttsfleet.devcluster.realfleet import metrics_server_note

        note = metrics_server_note()
        if note is not None:
            console.print(note, highlight=False)
    if api_port and kind == "real":
        console.print("[red]invalid setting:[/red] --api-port is for the embedded API only")
        raise typer.Exit(2)
    directory = state_dir or fleet.default_state_dir()
    if detach:
        extra = [*(["--api-port", str(api_port)] if api_port else []), *(["--instant"] if instant else [])]
        extra += [] if operator else ["--no-operator"]
        extra += ["--control-plane", kind]
        try:
            state = fleet.start_detached(directory, extra, directory / "logs" / "fleet.log")
        except RuntimeError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        console.print(status.summary(state))
        return
    emulator_args = ("--handshake-delay-ms", "0", "--first-byte-ms", "0", "--realtime-factor", "0")
    options = fleet.FleetOptions(
        state_dir=directory,
        api_port=api_port,
        with_operator=operator,
        emulator_args=emulator_args if instant else (),
        control_plane=kind,
    )
    display = status.live_display(console)
    try:
        fleet.serve_fleet(options, display)
    finally:
        display.stop()


def _require_embedded_api() -> None:
    """The embedded API is left out of production installs: say which extra brings it."""
    from ttsfleet.devcluster import embedded_api

    try:
        embedded_api.require()
    except embedded_api.EmbeddedApiMissing as missing:
        console.print(f"[red]{escape(str(missing))}[/red]")
        raise typer.Exit(2) from None


@dev.command("down")
def dev_down(state_dir: StateDirOption = None) -> None:
    """Stop the local fleet (pods are drained first)."""
    _require("local-fleet", "dev down")
    from ttsfleet.devcluster import fleet

    if fleet.stop_detached(state_dir or fleet.default_state_dir()):
        console.print("the local fleet is down")
    else:
        console.print("no local fleet was running")


@dev.command("status")
def dev_status(state_dir: StateDirOption = None) -> None:
    """Show the local fleet: processes, backends, deployments, pods and Service addresses."""
    _require("local-fleet", "dev status")
    from ttsfleet.devcluster import fleet, status

    directory = state_dir or fleet.default_state_dir()
    state = fleet.FleetState.read(directory)
    if state is None or not fleet.is_alive(state.pid):
        console.print("no local fleet is running")
        raise typer.Exit(1)
    Console().print(status.status_tables(state, fleet.cluster_view(state), fleet.read_services(directory)))


@dev.command("kubeconfig")
def dev_kubeconfig(state_dir: StateDirOption = None) -> None:
    """Print the path of the local fleet's kubeconfig (`export KUBECONFIG=$(ttsfleet dev kubeconfig)`)."""
    _require("local-fleet", "dev kubeconfig")
    from ttsfleet.devcluster import fleet

    state = fleet.FleetState.read(state_dir or fleet.default_state_dir())
    if state is None:
        console.print("no local fleet is running")
        raise typer.Exit(1)
    print(state.kubeconfig)


def main() -> None:
    """Console-script entry point."""
    app()
