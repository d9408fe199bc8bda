"""deploy/ (images, compose, Kubernetes) and docs/scaling.md, checked as far as a machine without
Docker or a cluster can: every YAML file parses; every environment variable they set is one that
beatframe (its Settings, or its code directly) or Prefect reads, or the postgres/MinIO images' own;
every command they run exists with the options given (beatframe's parser, Prefect's CLI, the
scripts in deploy/); and the compose services, Kubernetes objects, Dockerfiles and docs agree
with each other (images, ports, health routes, databases, pools, profiles).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
SCALING = ROOT / "docs" / "scaling.md"
#: Where the images keep the repository (Dockerfiles' WORKDIR, BEATFRAME_PROJECT_DIR).
APP = "/app"
OUR_IMAGES = {"api": DOCKER / "Dockerfile.api", "worker-cpu": DOCKER / "Dockerfile.worker-cpu",
              "worker-gpu": DOCKER / "Dockerfile.worker-gpu"}
#: Variables of the interpreter and the shell that the Dockerfiles set for themselves.
RUNTIME_ENV = {"PATH", "PYTHONUNBUFFERED"}
#: Programs of third-party images, by the image's name (before the tag).
IMAGE_PROGRAMS = {"postgres": {"pg_isready", "psql"}, "minio/minio": {"minio", "mc"}, "minio/mc": {"mc"}}
IMAGE_ENV_PREFIXES = {"postgres": ("POSTGRES_",), "minio/minio": ("MINIO_",), "minio/mc": ("MINIO_",)}
SHELL_BUILTINS = {"sleep", "true", "false", "echo", "test", "exit", "set"}
#: Programs the docs run on the operator's machine besides beatframe's and Prefect's.
HOST_PROGRAMS = {"docker", "kubectl", "curl"}


def _version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def image_name(image: str) -> str:
    """``postgres`` of ``postgres:16``, ``beatframe/api`` of ``beatframe/api:0.1.0``."""
    name, _, _ = image.partition("@")
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


# --- environment variables ------------------------------------------------------------------


@functools.cache
def beatframe_env() -> frozenset[str]:
    """Every variable beatframe reads: its Settings' fields (prefix or alias) and the names its code
    or prefect.yaml read directly."""
    from pydantic import AliasChoices

    from beatframe.infra.settings import Settings

    names = set()
    prefix = Settings.model_config.get("env_prefix", "")
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.add(f"{prefix}{field_name}".upper())
    direct = re.compile(r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")
    for folder in ("beatframe", "flows", "tasks", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(direct.findall(path.read_text()))
    names.update(re.findall(r"\{\{\s*\$([A-Z][A-Z0-9_]*)\s*\}\}", (ROOT / "prefect.yaml").read_text()))
    return frozenset(names)


def known_env(name: str, image: str | None = None) -> bool:
    if name in beatframe_env():
        return True
    if name.startswith("PREFECT_"):
        import prefect.settings

        return hasattr(prefect.settings, name)  # `from prefect.settings import PREFECT_…` works for every setting
    return name.startswith(IMAGE_ENV_PREFIXES.get(image_name(image or ""), ())) if image else False


def test_known_env_tells_real_names_from_typos():
    assert known_env("DATABASE_URL") and known_env("BEATFRAME_S3_ENDPOINT") and known_env("BEATFRAME_PROJECT_DIR")
    assert known_env("PREFECT_API_DATABASE_CONNECTION_URL") and known_env("PREFECT_DEFAULT_RESULT_STORAGE_BLOCK")
    assert known_env("POSTGRES_DB", "postgres:16") and known_env("MINIO_ROOT_USER", "minio/mc")
    assert not known_env("BEATFRAME_S3_ENDPIONT") and not known_env("PREFECT_API_DATABSE_CONNECTION_URL")
    assert not known_env("POSTGRES_DB", "beatframe/api:0.1.0") and not known_env("DATABASE_URI")


# --- parsing the files ----------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


@functools.cache
def load_yaml(path: Path) -> tuple:
    return tuple(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)


@functools.cache
def compose() -> dict:
    (doc,) = load_yaml(COMPOSE)
    return doc


def k8s_objects() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in load_yaml(path)
            if doc.get("kind") != "Kustomization"]


@dataclass
class Dockerfile:
    path: Path
    stages: list[list[tuple[str, str]]]  # per FROM: (INSTRUCTION, arguments)

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def all(self, instruction: str) -> list[str]:
        return [args for stage in self.stages for ins, args in stage if ins == instruction]

    def last(self, instruction: str) -> str | None:
        found = [args for ins, args in self.final if ins == instruction]
        return found[-1] if found else None


@functools.cache
def dockerfile(path: Path) -> Dockerfile:
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if not current and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        if current and raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args.strip()))
        else:
            assert instruction == "ARG", f"{path.name}: {instruction} before the first FROM"
    return Dockerfile(path, stages)


def exec_form(args: str, where: str) -> list[str]:
    try:
        argv = json.loads(args)
    except ValueError:
        pytest.fail(f"{where}: {args!r} is not exec form (a JSON array)")
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), where
    return argv


def dockerfile_env(df: Dockerfile) -> dict[str, str]:
    env = {}
    for args in (a for ins, a in df.final if ins == "ENV"):
        for token in shlex.split(args):
            name, sep, value = token.partition("=")
            assert sep, f"{df.path.name}: ENV {args!r}: use NAME=value"
            env[name] = value
    return env


def dockerfile_healthcheck(df: Dockerfile) -> list[str] | None:
    args = df.last("HEALTHCHECK")
    if args is None:
        return None
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", args)
    assert match, f"{df.path.name}: HEALTHCHECK wants CMD in exec form"
    return exec_form(match.group(1), f"{df.path.name} HEALTHCHECK")


# --- commands -------------------------------------------------------------------------------


SEPARATORS = {"&&", "||", ";", "|", "&"}
KEYWORDS = {"until", "while", "if", "then", "do", "else", "elif", "!", "{"}
ENDINGS = {"done", "fi", "}"}


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a small shell script, without redirections and shell keywords."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        current: list[str] = []
        skip_target = False
        for index, token in enumerate(tokens):
            if skip_target:
                skip_target = False
                if token != "&":  # `>&` followed by its target
                    continue
            if token in SEPARATORS:
                commands.append(current)
                current = []
            elif set(token) <= set("<>&") and ("<" in token or ">" in token):
                if current and current[-1].isdigit() and tokens[index - 1] == current[-1]:
                    current.pop()  # the descriptor of 2>&1
                skip_target = True
            else:
                current.append(token)
        commands.append(current)
    result = []
    for command in commands:
        while command and command[0] in KEYWORDS:
            command = command[1:]
        if command and command[0] not in ENDINGS:
            result.append(command)
    return result


def test_simple_commands_splits_like_a_shell():
    script = ("prefect work-pool inspect cpu > /dev/null 2>&1 || prefect work-pool create cpu --type process\n"
              "until prefect deployment inspect a/b >/dev/null 2>&1; do sleep 5; done\n"
              "python -c 'import a; b | c'  # a comment")
    assert simple_commands(script) == [
        ["prefect", "work-pool", "inspect", "cpu"], ["prefect", "work-pool", "create", "cpu", "--type", "process"],
        ["prefect", "deployment", "inspect", "a/b"], ["sleep", "5"], ["python", "-c", "import a; b | c"]]


@dataclass
class Run:
    where: str
    argv: list[str]
    image: str | None  # None: the operator's machine (docs)


class CommandChecker:
    """Collects every problem with the commands it is shown; Prefect's are checked in one batch."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.prefect: list[Run] = []
        self.urls: list[tuple[Run, str]] = []
        self.compose_commands: list[Run] = []
        self.kubectl: list[Run] = []

    def problem(self, run: Run, text: str) -> None:
        self.problems.append(f"{run.where}: {shlex.join(run.argv)}: {text}")

    def check(self, run: Run) -> None:
        argv = list(run.argv)
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):  # NAME=value command
            name = argv.pop(0).partition("=")[0]
            if not known_env(name, run.image):
                self.problem(run, f"{name} is read by neither beatframe nor Prefect")
        if not argv:
            return
        program = argv[0].rsplit("/", 1)[-1] if argv[0].startswith((".venv/", "/opt/venv/")) else argv[0]
        run = Run(run.where, [program, *argv[1:]], run.image)
        if program in ("sh", "bash") and len(argv) >= 3 and re.fullmatch(r"-e?c|-ce", argv[1]):
            for command in simple_commands(argv[2]):
                self.check(Run(run.where, command, run.image))
        elif program == "beatframe":
            self.check_beatframe(run)
        elif program == "prefect":
            self.prefect.append(run)
        elif program in ("python", "python3"):
            self.check_python(run)
        elif program in SHELL_BUILTINS:
            pass
        elif run.image is not None and program in IMAGE_PROGRAMS.get(image_name(run.image), ()):
            pass
        elif run.image is None and program == "docker":
            self.check_docker(run)
        elif run.image is None and program == "kubectl":
            self.check_kubectl(run)
        elif run.image is None and program in HOST_PROGRAMS:
            pass
        else:
            self.problem(run, f"{program!r} is not a program of image {run.image or 'the host'}")

    def check_beatframe(self, run: Run) -> None:
        from beatframe.cli.main import build_parser

        try:
            build_parser().parse_args(run.argv[1:])
        except SystemExit as exc:
            self.problem(run, f"beatframe's parser refuses it (exit {exc.code})")

    def check_python(self, run: Run) -> None:
        args = run.argv[1:]
        if args[:1] == ["-c"]:
            try:
                compile(args[1], run.where, "exec")
            except SyntaxError as exc:
                self.problem(run, f"not Python: {exc}")
            self.urls.extend((run, url) for url in re.findall(r"https?://[^'\"\s]+", args[1]))
        elif args[:1] == ["-m"]:
            if importlib.util.find_spec(args[1]) is None:
                self.problem(run, f"no module {args[1]}")
        elif args and args[0].endswith(".py"):
            relative = args[0].removeprefix(APP + "/")
            script = ROOT / relative
            if not relative.startswith("deploy/") or not script.is_file():
                self.problem(run, f"{args[0]} is not a script in deploy/")
                return
            spec = importlib.util.spec_from_file_location(f"deploy_script_{script.stem}", script)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            try:
                module.parse_args(args[1:])
            except SystemExit as exc:
                self.problem(run, f"{args[0]} refuses its arguments (exit {exc.code})")
        else:
            self.problem(run, "python runs neither -c, -m nor a script of deploy/")

    def check_docker(self, run: Run) -> None:
        args = run.argv[1:]
        if args[:1] == ["compose"]:
            self.compose_commands.append(run)
        elif args[:1] == ["build"]:
            files = [args[i + 1] for i, a in enumerate(args) if a in ("-f", "--file")]
            if not files or not all((ROOT / f).is_file() for f in files) or args[-1] != ".":
                self.problem(run, "docker build wants -f <a Dockerfile of deploy/docker> and the repository root")
        elif args[:1] == ["run"]:
            image = next((a for i, a in enumerate(args[1:], 1) if not a.startswith("-")
                          and args[i - 1] not in ("-e", "--env", "--name", "-v", "--restart")), None)
            if image not in {f"beatframe/{name}:{_version()}" for name in OUR_IMAGES}:
                self.problem(run, f"docker run of {image!r}, not one of the images of deploy/docker")
            for i, a in enumerate(args):
                if a in ("-e", "--env"):
                    name = args[i + 1].partition("=")[0]
                    if not known_env(name, image):
                        self.problem(run, f"{name} is read by neither beatframe nor Prefect")
            rest = args[args.index(image) + 1:] if image in args else []
            if rest:
                self.check(Run(run.where, rest, image))
        else:
            self.problem(run, "only docker build, run and compose are expected")

    def check_kubectl(self, run: Run) -> None:
        self.kubectl.append(run)
        args = run.argv[1:]
        if "--" in args:
            self.check(Run(run.where, args[args.index("--") + 1:], "beatframe/api"))


def compose_runs() -> list[Run]:
    runs = []
    for name, service in compose()["services"].items():
        image = service.get("image")
        where = f"compose.yaml services.{name}"
        entrypoint, command = service.get("entrypoint"), service.get("command")
        for value, key in ((entrypoint, "entrypoint"), (command, "command")):
            assert value is None or isinstance(value, list), f"{where}.{key}: use a list (exec form)"
        if entrypoint or command:
            if entrypoint is None and image_name(image) == "minio/minio":
                entrypoint = ["minio"]  # the image's own entrypoint runs `minio <command>`
            runs.append(Run(where, [*(entrypoint or []), *(command or [])], image))
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            assert test[0] in ("CMD", "CMD-SHELL"), f"{where}.healthcheck"
            argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
            runs.append(Run(f"{where}.healthcheck", argv, image))
    return runs


def dockerfile_runs() -> list[Run]:
    runs = []
    for name, path in OUR_IMAGES.items():
        df = dockerfile(path)
        image = f"beatframe/{name}:{_version()}"
        for instruction in ("ENTRYPOINT", "CMD"):
            if (args := df.last(instruction)) is not None:
                runs.append(Run(f"{path.name} {instruction}", exec_form(args, f"{path.name} {instruction}"), image))
        if (health := dockerfile_healthcheck(df)) is not None:
            runs.append(Run(f"{path.name} HEALTHCHECK", health, image))
    return runs


def pod_specs() -> list[tuple[str, dict, dict]]:
    """(where, object, pod spec) of every workload in deploy/k8s."""
    found = []
    for path, obj in k8s_objects():
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            found.append((f"k8s/{path.name} {obj['kind']}/{obj['metadata']['name']}", obj,
                          obj["spec"]["template"]["spec"]))
    return found


def k8s_runs() -> list[Run]:
    runs = []
    for where, _, spec in pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            argv = [*(container.get("command") or []), *(container.get("args") or [])]
            assert argv, f"{where} {container['name']}: name the command (the images have no ENTRYPOINT)"
            runs.append(Run(f"{where} {container['name']}", argv, container["image"]))
    return runs


def doc_runs(path: Path) -> list[Run]:
    runs = []
    for block in re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", path.read_text(), re.S):
        for command in simple_commands(block):
            runs.append(Run(f"{path.relative_to(ROOT)}", command, None))
    return runs


def check_prefect_commands(checker: CommandChecker) -> None:
    """Each `prefect …` against Prefect's own CLI: its parser in this process (commands, options,
    argument types, required arguments), or `prefect … --help` where that parser is not reachable."""
    try:
        from prefect.cli._app import _app  # the cyclopts App behind the `prefect` console script

        parse = _app.parse_args
    except (ImportError, AttributeError):
        parse = None
    for run in checker.prefect:
        if parse is not None:
            try:
                parse(run.argv[1:], exit_on_error=False, print_error=False)
            except Exception as exc:  # noqa: BLE001 - cyclopts' errors: unknown command or option, bad value
                checker.problem(run, f"Prefect's CLI refuses it: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        proc = subprocess.run([sys.executable, "-m", "prefect", *run.argv[1:], "--help"], capture_output=True,
                              text=True, timeout=60, env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"})
        unknown = [flag for flag in (a.split("=")[0] for a in run.argv[1:] if a.startswith("--"))
                   if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", proc.stdout)]
        if proc.returncode != 0 or unknown:
            checker.problem(run, f"`prefect … --help` exits {proc.returncode}; unknown options {unknown}")


@functools.cache
def checked_commands() -> CommandChecker:
    checker = CommandChecker()
    for run in [*compose_runs(), *dockerfile_runs(), *k8s_runs(), *doc_runs(SCALING), *doc_runs(DEPLOY / "README.md")]:
        checker.check(run)
    check_prefect_commands(checker)
    return checker


# --- the tests ------------------------------------------------------------------------------


def test_every_yaml_file_parses():
    files = yaml_files()
    assert COMPOSE in files and len([f for f in files if f.parent == K8S]) >= 8
    for path in files:
        docs = load_yaml(path)
        assert docs and all(isinstance(doc, dict) for doc in docs), path


def test_every_command_exists_with_its_options():
    checker = checked_commands()
    assert not checker.problems, "\n".join(checker.problems)
    seen = {tuple(run.argv[:3]) for run in checker.prefect}
    assert {("prefect", "server", "start"), ("prefect", "worker", "start"), ("prefect", "work-pool", "create")} <= seen


def test_the_command_checker_catches_mistakes():
    checker = CommandChecker()
    for argv in (["beatframe", "serve"], ["beatframe", "api", "--hots", "0.0.0.0"], ["prefect", "worker", "strat"],
                 ["prefect", "worker", "start", "--pol", "cpu"], ["sh", "-c", "beatframe deploy --nope"],
                 ["python", "deploy/missing.py"], ["BEATFRAME_S3_ENDPIONT=x", "beatframe", "api"]):
        checker.check(Run("test", argv, f"beatframe/api:{_version()}"))
    check_prefect_commands(checker)
    assert len(checker.problems) == 7, checker.problems


def test_health_checks_ask_routes_that_exist_on_the_ports_served():
    """The API's OpenAPI document (open, no key), Prefect's /api/health, the worker's /health."""
    from beatframe.api.app import create_app
    from prefect.settings import PREFECT_WORKER_WEBSERVER_PORT

    app = create_app()
    api_paths = {getattr(route, "path", None) for route in app.routes} | {app.openapi_url}
    server_source = Path(importlib.util.find_spec("prefect.server.api.server").origin).read_text()
    health = re.search(r'health_check_path: str = "([^"]+)"', server_source).group(1)
    assert 'app.mount("/api"' in server_source
    worker_source = Path(importlib.util.find_spec("prefect.workers.server").origin).read_text()
    assert 'add_api_route("/health"' in worker_source
    served = {"api": (8000, api_paths), "prefect-server": (4200, {f"/api{health}"}),
              "worker": (PREFECT_WORKER_WEBSERVER_PORT.default(), {"/health"})}
    checker = checked_commands()
    assert checker.urls
    for run, url in checker.urls:
        match = re.fullmatch(r"https?://127\.0\.0\.1:(\d+)(/\S*)", url)
        assert match, f"{run.where}: health check {url} should ask the container itself"
        port, path = int(match.group(1)), match.group(2)
        role = ("prefect-server" if "prefect-server" in run.where else
                "worker" if "worker" in run.where else "api")
        assert (port, path in served[role][1]) == (served[role][0], True), f"{run.where}: {url}"
    # the Kubernetes probes ask the same routes
    for where, _, spec in pod_specs():
        for container in spec["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    continue
                get = container[probe]["httpGet"]
                port = ports.get(get["port"], get["port"])
                assert any(port == p and get["path"] in paths for p, paths in served.values()), f"{where} {probe}"


def test_environment_variables_are_read_by_someone():
    problems = []
    for name, service in compose()["services"].items():
        for key in (service.get("environment") or {}):
            if not known_env(key, service.get("image")):
                problems.append(f"compose.yaml services.{name}: {key}")
    for ref in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()):
        if not known_env(ref) and not ref.startswith(("POSTGRES_", "MINIO_")):
            problems.append(f"compose.yaml interpolates {ref}")
    for path in OUR_IMAGES.values():
        for key in dockerfile_env(dockerfile(path)):
            if key not in RUNTIME_ENV and not known_env(key):
                problems.append(f"{path.name}: ENV {key}")
    for path, obj in k8s_objects():
        if obj["kind"] in ("ConfigMap", "Secret"):
            for key in [*(obj.get("data") or {}), *(obj.get("stringData") or {})]:
                if not known_env(key):
                    problems.append(f"k8s/{path.name} {obj['kind']}: {key}")
    for where, _, spec in pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for item in container.get("env", []):
                if not known_env(item["name"]):
                    problems.append(f"{where} {container['name']}: {item['name']}")
    assert not problems, problems


def test_dockerfiles():
    version = _version()
    for name, path in OUR_IMAGES.items():
        df = dockerfile(path)
        assert len(df.stages) >= 2, f"{path.name}: multi-stage"
        base = df.final[0][1]
        global_args = dict(re.findall(r"^ARG (\w+)=(\S+)", path.read_text(), re.M))
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], base)
        if name == "worker-gpu":
            stage_bases = [stage[0][1].split()[0] for stage in df.stages]
            first = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], stage_bases[0])
            assert first.startswith("nvidia/cuda:") and "runtime" in first, first
            assert "python3.11" in path.read_text()
            assert re.search(r"ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+", path.read_text())
            assert "ARG XFORMERS_VERSION" in path.read_text()
            # the CUDA build of the gen extra's pin, then the package with the gen extra
            assert "torch==${TORCH_VERSION}" in path.read_text() and "ARG TORCH_VERSION=2.13.0" in path.read_text()
            assert "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()
            assert re.search(r"pip install [^\n]*'\.\[gen,s3\]'", path.read_text())
        else:
            # the API and CPU workers are the core install: no generative stack
            assert resolved.startswith("python:3.11-slim"), resolved
            assert "torch" not in "".join(df.all("RUN")) and "[gen" not in "".join(df.all("RUN")), path.name
            assert re.search(r"pip install [^\n]*'\.\[s3\]'", path.read_text())
        user = df.last("USER")
        assert user and user.split(":")[0] not in ("root", "0"), f"{path.name}: runs as root"
        assert df.last("WORKDIR") == APP
        env = dockerfile_env(df)
        # the API hands workers out_dir paths under its data folder: the same path in every image
        assert env["BEATFRAME_DATA_DIR"] == "/data" and env["PATH"].startswith("/opt/venv/bin")
        if name.startswith("worker"):
            assert env["BEATFRAME_PROJECT_DIR"] == APP  # where prefect.yaml's deployments run from
        assert dockerfile_healthcheck(df), f"{path.name}: HEALTHCHECK"
        # what COPY takes from the context exists and passes the Dockerfile's own .dockerignore
        ignore = (path.parent / f"{path.name}.dockerignore").read_text().splitlines()
        allowed = {line[1:] for line in ignore if line.startswith("!")}
        assert "*" in ignore
        for args in df.all("COPY"):
            if "--from=" in args:
                continue
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"{path.name}: COPY {source}"
                assert source.split("/")[0] in allowed, f"{path.name}: COPY {source} is ignored"
        assert f"beatframe/{name}:{version}" in path.read_text()  # the build command in its header
        # the analysis kernels are compiled into the venv at build time (beatframe.music.analysis.jit)
        assert any("warm_up()" in run for run in df.all("RUN")), path.name
    # the API image serves the API; the workers poll their pool
    assert exec_form(dockerfile(OUR_IMAGES["api"]).last("CMD"), "api")[:2] == ["beatframe", "api"]
    for pool in ("cpu", "gpu"):
        cmd = exec_form(dockerfile(OUR_IMAGES[f"worker-{pool}"]).last("CMD"), pool)
        assert cmd[:3] == ["prefect", "worker", "start"] and cmd[cmd.index("--pool") + 1] == pool
        assert cmd[cmd.index("--type") + 1] == "process" and "--with-healthcheck" in cmd


def _env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_compose_stack():
    services = compose()["services"]
    assert {"postgres", "minio", "buckets", "prefect-server", "deploy", "api", "worker-cpu", "worker-gpu"} <= set(services)
    version = _version()
    for name, service in services.items():
        image = service["image"]
        if image_name(image).startswith("beatframe/"):
            assert image == f"{image_name(image)}:{version}", name
            build = service.get("build")
            assert build, f"{name}: build {image}"
            dockerfile_path = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
            assert dockerfile_path == OUR_IMAGES[image_name(image).removeprefix("beatframe/")], name
            assert (COMPOSE.parent / build["context"]).resolve() == ROOT
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for other, condition in depends.items():
            assert other in services, f"{name} depends on {other}"
            kind = condition["condition"]
            assert kind in ("service_started", "service_healthy", "service_completed_successfully"), name
            if kind == "service_healthy":
                target = services[other]
                has_own = bool((target.get("healthcheck") or {}).get("test"))
                from_image = (image_name(target["image"]).startswith("beatframe/")
                              and dockerfile_healthcheck(dockerfile(OUR_IMAGES[image_name(target["image"])[10:]])))
                assert has_own or from_image, f"{name} waits for {other} to be healthy, which has no health check"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
            elif not source.startswith("/"):
                assert source in (compose().get("volumes") or {}), f"{name}: volume {source}"

    # two databases on one PostgreSQL: beatframe's (psycopg) and Prefect's own (asyncpg)
    postgres = _env(services["postgres"])
    app_url = _env(services["api"])["DATABASE_URL"]
    prefect_url = _env(services["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert app_url.startswith("postgresql://") and prefect_url.startswith("postgresql+asyncpg://")
    app_db, prefect_db = app_url.rsplit("/", 1)[1], prefect_url.rsplit("/", 1)[1]
    assert app_db == postgres["POSTGRES_DB"] and prefect_db != app_db
    assert "@postgres:5432/" in app_url and "@postgres:5432/" in prefect_url
    init = [v for v in services["postgres"]["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init and f"CREATE DATABASE {prefect_db}" in (COMPOSE.parent / init[0].split(":")[0]).read_text()

    # the Prefect server, and every client pointed at it
    server = services["prefect-server"]
    command = server["command"]
    assert command[:3] == ["prefect", "server", "start"] and command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    clients = ["api", "deploy", "worker-cpu", "worker-gpu"]
    for name in clients:
        env = _env(services[name])
        assert env["PREFECT_API_URL"] == f"http://prefect-server:{port}/api", name
        assert env["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"] == "remote-file-system/beatframe-results", name
        assert env["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] == "true", name
        assert env["BEATFRAME_S3_ENDPOINT"].endswith("http://minio:9000}") and env["BEATFRAME_S3_BUCKET"] == "beatframe"
        assert {"prefect-server", "deploy"} <= set(services[name].get("depends_on") or {}) or name == "deploy"
    api = services["api"]
    assert _env(api)["BEATFRAME_RENDER_BACKEND"] == "deployment"
    assert api["command"] == ["beatframe", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert api["depends_on"]["deploy"]["condition"] == "service_completed_successfully"
    bucket_script = services["buckets"]["command"][0]
    assert f"local/{_env(api)['BEATFRAME_S3_BUCKET']}" in bucket_script

    # the one-shot registers both pools, the result storage block and prefect.yaml's deployments
    deploy = services["deploy"]
    steps = [c for c in simple_commands(deploy["command"][0])]
    assert ["prefect", "work-pool", "create", "cpu", "--type", "process"] in steps
    assert ["prefect", "work-pool", "create", "gpu", "--type", "process"] in steps
    assert ["python", "deploy/prefect_result_storage.py"] in steps
    assert steps[-1][:2] == ["beatframe", "deploy"]
    assert _env(deploy)["BEATFRAME_PROJECT_DIR"] == APP

    # workers: the CPU one scales (no fixed name or published port), the GPU one is a profile with a GPU
    pools = {d["work_pool"]["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    for name in ("worker-cpu", "worker-gpu"):
        worker = services[name]
        assert "container_name" not in worker and "ports" not in worker, name
        pool = worker["command"][worker["command"].index("--pool") + 1]
        assert pool in pools and name.endswith(pool)
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu.get("hostname")
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert any(v.endswith(":" + _env(gpu)["BEATFRAME_MODELS_DIR"] + ":ro") for v in gpu["volumes"])
    assert "gpu" not in (services["worker-cpu"].get("profiles") or [])


def test_compose_override_for_the_catalog_schedule():
    (override,) = load_yaml(DEPLOY / "compose.catalog.yaml")
    assert set(override["services"]) <= set(compose()["services"])
    catalog = next(d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
                   if d["name"] == "catalog")
    mounted = [v.split(":")[1] for v in override["services"]["worker-cpu"]["volumes"]]
    for schedule in catalog.get("schedules") or []:
        for key in ("source", "out_dir"):
            assert any(schedule["parameters"][key].startswith(m + "/") for m in mounted), key


def test_kubernetes_manifests():
    version = _version()
    objects = k8s_objects()
    kinds = {(obj["kind"], obj["metadata"]["name"]) for _, obj in objects}
    for path, obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), path
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "beatframe", f"{path.name} {obj['kind']}"
    assert {("Namespace", "beatframe"), ("ConfigMap", "beatframe-config"), ("Secret", "beatframe-secrets"),
            ("Deployment", "prefect-server"), ("Service", "prefect-server"), ("Deployment", "beatframe-api"),
            ("Service", "beatframe-api"), ("Deployment", "beatframe-worker-cpu"),
            ("HorizontalPodAutoscaler", "beatframe-worker-cpu"), ("Deployment", "beatframe-worker-gpu"),
            ("Job", "beatframe-deploy")} <= kinds

    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    assert all((K8S / f).is_file() for f in listed)
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    ours = {f"beatframe/{name}" for name in OUR_IMAGES}
    assert {i["name"] for i in kustomization["images"]} == ours
    assert all(i["newTag"] == version for i in kustomization["images"])

    secret = next(obj for _, obj in objects if obj["kind"] == "Secret")
    config = next(obj for _, obj in objects if obj["kind"] == "ConfigMap")
    assert all("CHANGE_ME" in value for value in secret["stringData"].values())  # placeholders only
    assert secret["stringData"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert secret["stringData"]["DATABASE_URL"].startswith("postgresql://")
    assert config["data"]["BEATFRAME_RENDER_BACKEND"] == "deployment"

    workloads = pod_specs()
    labels_of = {obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"] for _, obj, _ in workloads}
    for _, obj, spec in workloads:
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"]["matchLabels"]
            assert selector.items() <= labels_of[obj["metadata"]["name"]].items(), obj["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["image"] in {f"{i}:{version}" for i in ours}, container["image"]
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in kinds
            for item in container.get("env", []):
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "beatframe-secrets" and ref["key"] in secret["stringData"], item["name"]
        for volume in spec.get("volumes", []):
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            assert claim is None or ("PersistentVolumeClaim", claim) in kinds, claim
    for _, service in ((p, o) for p, o in objects if o["kind"] == "Service"):
        targets = [spec for _, obj, spec in workloads
                   if service["spec"]["selector"].items() <= labels_of[obj["metadata"]["name"]].items()]
        assert targets, service["metadata"]["name"]
        ports = {p.get("name") for spec in targets for c in spec["containers"] for p in c.get("ports", [])}
        ports |= {p["containerPort"] for spec in targets for c in spec["containers"] for p in c.get("ports", [])}
        assert all(p["targetPort"] in ports for p in service["spec"]["ports"]), service["metadata"]["name"]

    by_name = {obj["metadata"]["name"]: (obj, spec) for _, obj, spec in workloads}
    # the API submits to deployments through the Prefect service; the server has its own database
    server_port = by_name["prefect-server"][1]["containers"][0]["ports"][0]["containerPort"]
    assert config["data"]["PREFECT_API_URL"] == f"http://prefect-server.beatframe.svc.cluster.local:{server_port}/api"
    server_env = {e["name"] for e in by_name["prefect-server"][1]["containers"][0]["env"]}
    assert "PREFECT_API_DATABASE_CONNECTION_URL" in server_env
    api_env = {e["name"] for e in by_name["beatframe-api"][1]["containers"][0]["env"]}
    assert "DATABASE_URL" in api_env
    # HPA on the CPU workers; GPU workers ask for a GPU on GPU nodes
    hpa = next(obj for _, obj in objects if obj["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "beatframe-worker-cpu"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    gpu_obj, gpu_spec = by_name["beatframe-worker-gpu"]
    (gpu_container,) = gpu_spec["containers"]
    assert int(gpu_container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert gpu_spec.get("nodeSelector") and any(t["key"] == "nvidia.com/gpu" for t in gpu_spec["tolerations"])
    for name, pool in (("beatframe-worker-cpu", "cpu"), ("beatframe-worker-gpu", "gpu")):
        command = by_name[name][1]["containers"][0]["command"]
        assert command[command.index("--pool") + 1] == pool and by_name[name][1]["containers"][0]["image"].startswith(
            f"beatframe/worker-{pool}:")
    # the API's init container waits for a deployment the API submits to
    (wait,) = by_name["beatframe-api"][1]["initContainers"]
    from beatframe.api.runner import DEPLOYMENTS

    waited = [c[3] for c in simple_commands(wait["command"][-1]) if c[:3] == ["prefect", "deployment", "inspect"]]
    assert waited and set(waited) <= set(DEPLOYMENTS.values())
    # the API hands workers out_dir paths under its BEATFRAME_DATA_DIR: the same, writable path everywhere
    assert config["data"]["BEATFRAME_DATA_DIR"] == "/data" and config["data"]["BEATFRAME_PROJECT_DIR"] == APP
    for name in ("beatframe-api", "beatframe-worker-cpu", "beatframe-worker-gpu"):
        mounts = {m["mountPath"] for m in by_name[name][1]["containers"][0]["volumeMounts"]}
        assert "/data" in mounts, name
    job_script = by_name["beatframe-deploy"][1]["containers"][0]["command"][-1]
    assert job_script == compose()["services"]["deploy"]["command"][0]  # the same steps as compose's one-shot


def test_docs_refer_to_what_exists():
    checker = checked_commands()
    services = compose()["services"]
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    assert checker.compose_commands
    for run in checker.compose_commands:
        args = run.argv[2:]
        files = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
        assert files and files[0] == "deploy/compose.yaml" and all((ROOT / f).is_file() for f in files), run.where
        for i, a in enumerate(args):
            if a == "--profile":
                assert args[i + 1] in profiles, f"{run.where}: profile {args[i + 1]}"
            if a == "--scale":
                assert args[i + 1].split("=")[0] in services, f"{run.where}: {args[i + 1]}"
        # compose's own options come before the subcommand, each with a value
        at = 0
        while args[at] in ("-f", "--file", "--profile"):
            at += 2
        subcommand, rest = args[at], args[at + 1:]
        assert subcommand in ("up", "down", "build", "logs", "ps", "exec", "run", "config", "pull"), run.where
        if subcommand in ("exec", "run"):  # options without values, the service, its command
            while rest[0].startswith("-"):
                rest = rest[1:]
            service, command = rest[0], rest[1:]
            assert service in services, f"{run.where}: {service}"
            inner = CommandChecker()
            inner.check(Run(run.where, command, services[service]["image"]))
            check_prefect_commands(inner)
            assert not inner.problems, inner.problems
        else:
            names = [a for i, a in enumerate(rest) if not a.startswith("-") and (i == 0 or rest[i - 1] != "--scale")]
            assert all(n in services for n in names), f"{run.where}: {names}"
    k8s_names = {f"{obj['kind']}/{obj['metadata']['name']}" for _, obj in k8s_objects()}
    short = {"deploy": "Deployment", "job": "Job", "svc": "Service"}
    for run in checker.kubectl:
        for i, a in enumerate(run.argv):
            if a in ("-f", "-k") and run.argv[i + 1].startswith("deploy/"):
                assert (ROOT / run.argv[i + 1]).exists(), f"{run.where}: {run.argv[i + 1]}"
            if a == "-n":
                assert run.argv[i + 1] == "beatframe"
            match = re.fullmatch(r"(deploy|job|svc)/([^/]+)", a)
            if match and run.argv[i - 1] not in ("-f", "-k"):
                assert f"{short[match.group(1)]}/{match.group(2)}" in k8s_names, f"{run.where}: {a}"
    # every deploy/ file the docs name exists
    text = SCALING.read_text() + (DEPLOY / "README.md").read_text()
    for name in set(re.findall(r"`((?:deploy/)[\w./-]+)`", text)) - {"deploy/.env"}:  # .env: the operator's
        assert (ROOT / name).exists(), name
    for name in set(re.findall(r"`((?:docker|k8s|compose)/[\w./*-]*)`", (DEPLOY / "README.md").read_text())):
        assert list(DEPLOY.glob(name.rstrip("/"))), name


def test_result_storage_block_is_built_from_beatframes_s3_settings(monkeypatch):
    spec = importlib.util.spec_from_file_location("prefect_result_storage", DEPLOY / "prefect_result_storage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from prefect.filesystems import RemoteFileSystem

    from beatframe.infra.settings import Settings

    settings = Settings(s3_endpoint="minio:9000", s3_secure=False, s3_access_key="ak", s3_secret_key="sk",
                        s3_bucket="media", s3_region="us-east-1")
    fields = module.block_fields(settings)
    assert fields == {"basepath": "s3://media/prefect-results",
                      "settings": {"key": "ak", "secret": "sk",
                                   "client_kwargs": {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}}}
    RemoteFileSystem(**fields)  # a valid block
    anonymous = module.block_fields(Settings(s3_endpoint="https://s3.example.com", s3_bucket="b"), "s3://b/r/")
    assert anonymous == {"basepath": "s3://b/r", "settings": {"client_kwargs": {"endpoint_url": "https://s3.example.com"}}}
    assert module.block_name("remote-file-system/beatframe-results") == "beatframe-results"
    # the slug compose and Kubernetes give the workers is the block the script saves
    assert module.block_name(_env(compose()["services"]["deploy"])["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"])
    for bad in (None, "", "local-file-system/x", "remote-file-system/", "remote-file-system/a/b"):
        with pytest.raises(module.BadInput):
            module.block_name(bad)
    monkeypatch.delenv("PREFECT_DEFAULT_RESULT_STORAGE_BLOCK", raising=False)
    assert module.main([]) == 2  # no block named: one line, exit 2, nothing saved
    assert module.main(["--block", "local-file-system/x"]) == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_renders_the_manifests_with_the_registry_images():
    proc = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rendered = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    expected = {f"{i['newName']}:{i['newTag']}" for i in kustomization["images"]}
    images = {c["image"] for doc in rendered if doc["kind"] in ("Deployment", "Job")
              for c in [*doc["spec"]["template"]["spec"].get("initContainers", []),
                        *doc["spec"]["template"]["spec"]["containers"]]}
    assert images == expected
    assert {doc["metadata"].get("namespace") for doc in rendered if doc["kind"] != "Namespace"} == {"beatframe"}
