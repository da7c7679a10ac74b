"""How a worker process is started and confined by the OS (layer 3).

Host side: build the worker's environment from scratch (no inherited variables, so no API
keys), find the few directories Python needs, and wrap the interpreter in bubblewrap
(`--unshare-all`, read-only binds, private /tmp, new /proc, `--cap-drop ALL`, uid/gid 65534,
`--die-with-parent`, `--new-session`, `--disable-userns`). Where bwrap cannot start a sandbox
(user namespaces refused, as in Docker's default profile) the worker is a plain child process that
confines itself with Landlock (landlock.py: reads only beneath Python's own directories, no writes,
no TCP) before any untrusted byte arrives. With neither there is no OS boundary and no policy code
runs: `detect` raises `NoIsolationError`, which names the fix. Only the loudly named mode
"unsafe-process" runs a worker without one. Without bwrap, a worker started as root drops to uid
65534 when it can still read the interpreter. Worker side: `apply_rlimits`
(address space, open files, file size, core dumps, processes) and `set_cpu_limit` before each
run. Detection happens once, at start-up.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from capstan.sandbox import landlock

NOBODY = 65534
INNER_LIB = "/opt/capstan/lib"
INNER_SITE = "/opt/capstan/site"
PACKAGE_DIR = Path(__file__).resolve().parent
ROOT_INIT = PACKAGE_DIR.parent / "__init__.py"  # capstan/__init__.py: import-free by design
THIRD_PARTY = ("numpy", "shapely")

_BOOT = (
    "import sys; sys.path[:0] = sys.argv[1].split(':'); "
    "from capstan.sandbox.worker import main; main(int(sys.argv[2]), sys.argv[3])"
)


def scrubbed_env(tmp: str = "/tmp") -> dict[str, str]:  # noqa: S108 - the worker's own private /tmp
    """The worker's whole environment, built from nothing (never filtered from ours)."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": tmp,
        "TMPDIR": tmp,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }


@dataclass
class Layout:
    """What the worker needs from the host file system."""

    interpreter: str
    prefix: str
    packages: dict[str, str] = field(default_factory=dict)  # name -> host dir or file

    @classmethod
    def discover(cls, extra_modules=()) -> Layout:
        interpreter = os.path.realpath(sys.executable)
        prefix = os.path.realpath(sys.base_prefix)
        packages: dict[str, str] = {}
        stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
        for name in (*THIRD_PARTY, *extra_modules):
            top = name.split(".")[0]
            spec = importlib.util.find_spec(top)
            if spec is None:
                raise ModuleNotFoundError(
                    f"sandbox module {top!r} is not installed; pip install it or drop it"
                )
            where = next(iter(spec.submodule_search_locations or ()), None) or spec.origin
            if where is None:
                raise ModuleNotFoundError(f"sandbox module {top!r} has no location on disk")
            path = os.path.realpath(where)
            if path.startswith(stdlib + os.sep) or spec.origin in ("built-in", "frozen"):
                continue
            packages[os.path.basename(path)] = path
            libs = os.path.join(os.path.dirname(path), f"{top}.libs")  # auditwheel-bundled shared libs
            if os.path.isdir(libs):
                packages[f"{top}.libs"] = libs
        return cls(interpreter, prefix, packages)


@dataclass
class Isolation:
    """The OS layer chosen at start-up."""

    mode: str  # "bwrap" | "landlock" | "unsafe-process"
    bwrap: str | None
    layout: Layout
    drop_to_nobody: bool
    reason: str = ""

    def command(self, fd: int, config: dict) -> list[str]:
        if self.mode == "landlock":
            config = {**config, "landlock": self.landlock_paths()}
        cfg = json.dumps(config)
        python = [self.layout.interpreter, "-I", "-B", "-S", "-c", _BOOT]
        if self.mode != "bwrap":
            sites = sorted({os.path.dirname(p) for p in self.layout.packages.values()})
            # no mount namespace to hide anything in: the package's parent directory goes on the path
            return [*python, ":".join([str(PACKAGE_DIR.parent.parent), *sites]), str(fd), cfg]
        return [*self.bwrap_args(), "--", *python, f"{INNER_LIB}:{INNER_SITE}", str(fd), cfg]

    def bwrap_args(self) -> list[str]:
        args = [
            self.bwrap or "bwrap",
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--disable-userns",
            "--cap-drop",
            "ALL",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
            "--hostname",
            "sandbox",
            "--clearenv",
        ]
        for key, value in scrubbed_env().items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        if not self.layout.prefix.startswith("/usr/"):
            args += ["--ro-bind", self.layout.prefix, self.layout.prefix]
        for name, path in sorted(self.layout.packages.items()):
            args += ["--ro-bind", path, f"{INNER_SITE}/{name}"]
        args += ["--ro-bind", str(ROOT_INIT), f"{INNER_LIB}/capstan/__init__.py"]
        args += ["--ro-bind", str(PACKAGE_DIR), f"{INNER_LIB}/capstan/sandbox"]
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(64 << 20),
            "--tmpfs",
            "/tmp",  # noqa: S108 - a fresh tmpfs inside the namespace, not the host's /tmp
            "--remount-ro",
            "/",
            "--chdir",
            "/tmp",  # noqa: S108 - that tmpfs
        ]
        return args

    def landlock_paths(self) -> list[str]:
        """What a Landlock worker may read: Python, its packages, the sandbox package, the system's
        shared libraries and its own /proc entry. Nothing else, and nothing at all for writing."""
        here = [
            str(PACKAGE_DIR),
            str(ROOT_INIT),
            os.path.dirname(self.layout.interpreter),
            self.layout.prefix,
        ]
        system = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/proc/self"]
        return [*here, *sorted(self.layout.packages.values()), *system]

    def popen_kwargs(self) -> dict:
        kwargs: dict = {"env": scrubbed_env(), "cwd": "/"}
        if self.drop_to_nobody:
            kwargs.update(user=NOBODY, group=NOBODY, extra_groups=[])
        return kwargs

    def report(self) -> dict[str, object]:
        base: dict[str, object] = {
            "mode": self.mode,
            "process": "one fresh worker process per run, killed (SIGKILL to its process group) by the "
            "parent",
            "environment": "built from scratch: " + ", ".join(sorted(scrubbed_env())),
            "file_descriptors": "stdin/stdout/stderr to /dev/null plus the channel socket only",
            "processes": "none: seccomp refuses fork/vfork/execve and clone without CLONE_THREAD; "
            "RLIMIT_NPROC=0 as a backstop (the kernel does not apply it to tasks owned by root)",
            "parent_death": "worker gets SIGKILL when its parent dies (PR_SET_PDEATHSIG"
            + (", bwrap --die-with-parent)" if self.mode == "bwrap" else ")"),
        }
        if self.mode == "bwrap":
            base.update(
                {
                    "bwrap": self.bwrap,
                    "namespaces": ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"],
                    "network": "none (empty network namespace)",
                    "filesystem": "read-only: /usr, /lib*, python prefix, numpy, shapely, sandbox package; "
                    "private 64 MiB tmpfs /tmp (the only writable mount, and seccomp refuses opening files "
                    "for writing anyway); new /proc; no /home, no repository, no /etc",
                    "capabilities": "all dropped; no new privileges; no nested user namespaces",
                    "uid_gid": f"{NOBODY}:{NOBODY} inside the user namespace",
                }
            )
        elif self.mode == "landlock":
            base.update(
                {
                    "bwrap": None,
                    "why_not_bwrap": self.reason,
                    "landlock": "the worker restricts itself before any untrusted byte arrives (measured "
                    "below)",
                    "network": "TCP bind and connect refused by Landlock; sockets refused by seccomp",
                    "filesystem": "read-only beneath: " + ", ".join(self.landlock_paths()) + "; nothing else "
                    "readable, nothing writable (Landlock), writes refused by seccomp too",
                    "uid_gid": f"{NOBODY}:{NOBODY}"
                    if self.drop_to_nobody or os.geteuid() == 0
                    else f"{os.getuid()}:{os.getgid()} (the service's own user, confined by Landlock)",
                }
            )
        else:
            base.update(
                {
                    "bwrap": None,
                    "unsafe": "no OS boundary: " + self.reason,
                    "network": "host network namespace; sockets refused by seccomp",
                    "filesystem": "host file system; writes refused by seccomp",
                    "uid_gid": f"{NOBODY}:{NOBODY}"
                    if self.drop_to_nobody or os.geteuid() == 0
                    else f"{os.getuid()}:{os.getgid()} (the service's own user)",
                }
            )
        return base


UNSAFE = "unsafe-process"
MODES = ("auto", "bwrap", "landlock", UNSAFE)
FIX = (
    "install bubblewrap (apt-get install bubblewrap) where unprivileged user namespaces are allowed "
    "(in Docker: docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined ..., see "
    "the "
    "Dockerfile), or set CAPSTAN_SANDBOX_ISOLATION=unsafe-process to run policy code with no OS boundary "
    "(never for code or users you do not trust)"
)


class NoIsolationError(RuntimeError):
    """No OS boundary is available for policy code, and none was waived."""


def detect(mode: str = "auto", extra_modules=(), bwrap: str | None = None) -> Isolation:
    """The strongest OS boundary that works here. "auto" (the default): bubblewrap if it really starts
    a sandbox here (probed), else Landlock if the kernel has it, else NoIsolationError naming the
    fix. "bwrap" and "landlock" require that one. "unsafe-process" runs workers as plain child
    processes with no OS boundary. With mode "auto", CAPSTAN_SANDBOX_ISOLATION overrides it."""
    if mode == "auto":
        mode = os.environ.get("CAPSTAN_SANDBOX_ISOLATION", "auto") or "auto"
    if mode == "process":
        raise ValueError(
            "CAPSTAN_SANDBOX_ISOLATION=process is now called unsafe-process: it runs policy code with no OS "
            "boundary. Set CAPSTAN_SANDBOX_ISOLATION=unsafe-process to choose that knowingly"
        )
    if mode not in MODES:
        raise ValueError(f"isolation must be one of {', '.join(MODES)}, not {mode!r}")
    layout = Layout.discover(extra_modules)
    if mode == UNSAFE:
        return Isolation(
            UNSAFE,
            None,
            layout,
            _can_drop_to_nobody(layout),
            "chosen: CAPSTAN_SANDBOX_ISOLATION=unsafe-process",
        )
    why = "CAPSTAN_SANDBOX_ISOLATION=landlock"
    if mode != "landlock":
        found, why = _probe_bwrap(layout, bwrap)
        if found is not None:
            return found
        if mode == "bwrap":
            raise NoIsolationError(f"no OS boundary for policy code: {why}. To fix: {FIX}")
    abi = landlock.abi_version()
    if abi >= 1:
        return Isolation("landlock", None, layout, _can_drop_to_nobody(layout), why)
    raise NoIsolationError(
        f"no OS boundary for policy code: {why}, and this kernel has no Landlock. To fix: {FIX}"
    )


def _probe_bwrap(layout: Layout, bwrap: str | None) -> tuple[Isolation | None, str]:
    """A bwrap isolation if bwrap is installed and really starts a sandbox here, else why not."""
    bwrap = bwrap or shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)
    if not bwrap:
        return None, "bubblewrap (bwrap) is not installed"
    candidate = Isolation("bwrap", bwrap, layout, False)
    try:
        probe = subprocess.run(  # noqa: S603 - bubblewrap with our own arguments, no shell
            [*candidate.bwrap_args(), "--", "/usr/bin/true"],
            env=scrubbed_env(),
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{bwrap} cannot start a sandbox here ({type(exc).__name__}: {exc})"
    if probe.returncode == 0:
        return candidate, ""
    why = probe.stderr.decode(errors="replace").strip()[:300] or f"it exited with status {probe.returncode}"
    return None, f"{bwrap} cannot start a sandbox here ({why})"


def _can_drop_to_nobody(layout: Layout) -> bool:
    """Root may run the worker as nobody only if nobody can still read the interpreter."""
    if os.geteuid() != 0:
        return False
    paths = [layout.interpreter, str(ROOT_INIT), str(PACKAGE_DIR), *layout.packages.values()]
    return all(_world_readable(p) for p in paths)


def _world_readable(path: str) -> bool:
    p = Path(path)
    for part in [p, *p.parents]:
        mode = part.stat().st_mode
        need = stat.S_IXOTH if part != p or p.is_dir() else stat.S_IROTH
        if not mode & need:
            return False
    return True


# --------------------------------------------------------------------------- worker side


def apply_rlimits(memory_mb: int, file_size_mb: int = 1) -> dict:
    """Limits set by the worker on itself before any untrusted code runs."""
    limits = {
        "RLIMIT_AS": memory_mb << 20,
        "RLIMIT_NOFILE": 16,
        "RLIMIT_FSIZE": file_size_mb << 20,
        "RLIMIT_CORE": 0,
        "RLIMIT_NPROC": 0,
        "RLIMIT_MEMLOCK": 0,
        "RLIMIT_MSGQUEUE": 0,
    }
    applied = {}
    for name, value in limits.items():
        which = getattr(resource, name)
        try:
            resource.setrlimit(which, (value, value))
            applied[name] = value
        except (ValueError, OSError) as exc:
            applied[name] = f"failed: {exc}"
    return applied


def die_with_parent() -> None:
    """SIGKILL this worker when its parent goes away (PR_SET_PDEATHSIG), and exit at once if
    that already happened."""
    import ctypes
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def drop_root() -> str:
    """A worker still running as root (no bwrap, interpreter not readable by nobody)
    becomes nobody once its imports are done: no capabilities, no access to root's files."""
    if os.getuid() != 0 and os.geteuid() != 0:
        return "not root"
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return f"dropped root to {NOBODY}:{NOBODY} after start-up"


def set_cpu_limit(cpu_s: float) -> None:
    """Let the program compute for about `cpu_s` more CPU seconds; then SIGXCPU ends the worker."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    soft = math.ceil(spent + cpu_s)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 2))
