"""`hoop run --isolate`: the agent in a Linux mount namespace where the user's HOOP_HOME, ~/.aws
and keyring are empty, so the session credential in its environment is all it can reach.

bubblewrap (Debian's `bubblewrap`) is used when it is installed, else util-linux `unshare`:

- bwrap: a new user, PID and mount namespace over the whole file system (`--bind / /`), a fresh
  /proc and /dev, a tmpfs over each hidden directory (`/dev/null` over a hidden file), every
  capability dropped, no further user namespaces, a new terminal session where the kernel still
  allows TIOCSTI (no typing into the user's shell), killed with its parent.
- unshare: `unshare --user --map-root-user --mount --pid --fork --mount-proc` mounts the tmpfs
  over each hidden path, then a second `unshare --user --mount` maps the user back to their own
  uid; the second namespace makes those mounts locked, so the agent cannot unmount them.

A fresh PID namespace matters as much as the mounts: `/proc/PID/root` of any process outside
the namespace would otherwise lead straight back to the user's files.

Both need user namespaces (unprivileged ones, for a normal user): where the kernel refuses them
the probe fails and `hoop run --isolate` says so, instead of running the agent unconfined.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hoopcli.errors import UsageError

TOOLS = ("bwrap", "unshare")
# Variables that lead to the user's keyring or session bus (hidden below as well).
KEYRING_VARS = ("DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "GNOME_KEYRING_PID",
                "HOOP_TOKEN_STORE", "AWS_VAULT", "AWS_VAULT_BACKEND")


class IsolationUnavailable(UsageError):
    """The system cannot run the agent in its own mount namespace."""


@dataclass(frozen=True)
class Plan:
    tool: str                      # "bwrap" | "unshare"
    path: str                      # the tool's executable
    hidden_dirs: tuple[Path, ...]  # a tmpfs over each
    hidden_files: tuple[Path, ...]  # /dev/null over each


def hidden_paths(environ: Mapping[str, str], user_home: Path) -> list[Path]:
    """What the agent must not reach: the user's HOOP_HOME (as set, and the default one), ~/.aws
    and the files AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE name, and the keyring: its
    control socket directory, the session bus it is reached through, file-based keyrings."""
    home = Path(environ.get("HOME") or Path.home())
    data = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    # HOOP_HOME as set, and the default one (platformdirs' user data dir on Linux)
    paths = [user_home, data / "hoop", home / ".aws"]
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        if environ.get(name):
            paths.append(Path(environ[name]).expanduser())
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        paths += [Path(runtime) / "keyring", Path(runtime) / "bus"]
    paths += [data / "keyrings", data / "python_keyring"]
    out: list[Path] = []
    for p in paths:
        p = Path(os.path.abspath(p))
        if p not in out and (p.is_dir() or p.exists()) and p != Path("/"):
            out.append(p)
    return out


def plan(environ: Mapping[str, str], user_home: Path, *, keep: Sequence[Path] = ()) -> Plan:
    """Which tool, and what it hides. `keep` are paths the agent needs (its own directory, the
    working directory): hiding one of their parents is refused rather than breaking the agent."""
    if not sys.platform.startswith("linux"):
        raise IsolationUnavailable("--isolate needs Linux mount namespaces (bubblewrap or unshare); "
                                   f"this system is {sys.platform}")
    wanted = environ.get("HOOP_ISOLATE_TOOL", "").strip().lower()
    if wanted and wanted not in TOOLS:
        raise UsageError(f"HOOP_ISOLATE_TOOL must be one of {', '.join(TOOLS)}, not {wanted!r}")
    tool = path = None
    for name in ([wanted] if wanted else TOOLS):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            tool, path = name, found
            break
    if tool is None or path is None:
        raise IsolationUnavailable("--isolate needs bubblewrap (`apt-get install bubblewrap`) or util-linux "
                                   "`unshare` on PATH")
    dirs: list[Path] = []
    files: list[Path] = []
    for p in hidden_paths(environ, user_home):
        for k in keep:
            if Path(os.path.abspath(k)).is_relative_to(p):
                raise UsageError(f"--isolate hides {p}, which holds {k}; run the agent from another directory")
        (dirs if p.is_dir() else files).append(p)
    return Plan(tool, path, tuple(dirs), tuple(files))


def command(p: Plan, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` inside the namespace."""
    if p.tool == "bwrap":
        out = [p.path, "--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--cap-drop", "ALL", "--die-with-parent", *(["--new-session"] if tiocsti_allowed() else []),
               "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for d in p.hidden_dirs:
            out += ["--tmpfs", str(d)]
        for f in p.hidden_files:
            out += ["--ro-bind", "/dev/null", str(f)]
        return [*out, "--", *argv]
    # unshare: mount as root of a first user namespace, run the agent in a second one.
    setsid = shutil.which("setsid")
    session = f"{setsid} --wait " if setsid and tiocsti_allowed() else ""
    script = ('set -e; while [ "$1" != -- ]; do kind=$1; target=$2; shift 2; '
              'if [ "$kind" = d ]; then mount -t tmpfs -o mode=0700,nosuid,nodev hoop-hidden "$target"; '
              'else mount --bind /dev/null "$target"; fi; done; shift; '
              f'exec {p.path} --user --mount --map-user={os.getuid()} --map-group={os.getgid()} -- {session}"$@"')
    spec: list[str] = []
    for d in p.hidden_dirs:
        spec += ["d", str(d)]
    for f in p.hidden_files:
        spec += ["f", str(f)]
    return [p.path, "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "--",
            "/bin/sh", "-c", script, "hoop-isolate", *spec, "--", *argv]


def tiocsti_allowed() -> bool:
    """Whether the kernel lets a process push input into its terminal (TIOCSTI): then the agent
    gets a terminal session of its own, or it could type commands into the user's shell. Linux
    6.2+ can switch TIOCSTI off (dev.tty.legacy_tiocsti = 0); a new session costs an interactive
    agent its terminal's resize signals, so it is used only where it is needed."""
    try:
        return Path("/proc/sys/dev/tty/legacy_tiocsti").read_text().strip() != "0"
    except OSError:
        return True


def probe(p: Plan) -> None:
    """Run `true` the same way: a system without (unprivileged) user namespaces fails here, with
    the tool's own words in the message."""
    try:
        done = subprocess.run(command(p, ["/bin/true"]), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IsolationUnavailable(f"--isolate: {p.tool} could not start: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise IsolationUnavailable(
            f"--isolate: {p.tool} cannot create a user and mount namespace here ({why}); user namespaces "
            "are disabled on this system (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces, "
            "or a container that forbids them). Run the agent as another OS user instead")


def aws_launcher(folder: Path) -> Path:
    """The `aws` the isolated agent finds first on PATH: hoop's shim, written into `folder/bin`
    (the namespace hides the user's HOOP_HOME and its bin). There it finds HOOP_ISOLATED=1 and no
    login, and runs token-free: each call goes to the gateway with the session credential from
    the environment, where the server decides, holds, masks and records it (shim.Shim
    ._run_token_free). Returns the directory."""
    from hoopcli.agents.shimfile import install_shim

    return install_shim(folder / "bin").parent


def agent_environment(env: Mapping[str, str], *, agent_home: Path) -> dict[str, str]:
    """The isolated agent's environment: its own empty HOOP_HOME and nothing that names the
    user's keyring or session bus."""
    out = {k: v for k, v in env.items() if k not in KEYRING_VARS}
    out["HOOP_HOME"] = str(agent_home)
    out["HOOP_ISOLATED"] = "1"
    return out
