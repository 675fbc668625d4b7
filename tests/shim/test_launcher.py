"""The `aws` launcher's process handling: the GC paused during startup and resumed over a frozen
heap before the command runs, and the fast exit that skips interpreter teardown without losing
output, atexit work, a running thread or the exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _python(code: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          timeout=60, **kw)


def test_fast_exit_flushes_buffered_output_runs_atexit_and_keeps_the_code(tmp_path):
    marker = tmp_path / "atexit-ran"
    proc = _python(f"""
        import atexit, sys
        from hoopcli.launcher import fast_exit
        atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
        sys.stdout.write("x" * 200_000)          # still in the buffer: no newline, a pipe
        sys.stdout.write("tail-without-newline")
        fast_exit(3)
        raise SystemExit("not reached")
    """)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == b"x" * 200_000 + b"tail-without-newline"
    assert marker.read_text() == "yes"


def test_fast_exit_waits_for_a_running_non_daemon_thread(tmp_path):
    done = tmp_path / "thread-finished"
    proc = _python(f"""
        import threading, time
        from hoopcli.launcher import fast_exit
        def work():
            time.sleep(0.5)
            open({str(done)!r}, "w").write("done")
        threading.Thread(target=work).start()
        fast_exit(5)
    """)
    assert proc.returncode == 5, proc.stderr
    assert done.read_text() == "done"


def test_fast_exit_falls_back_to_a_normal_exit_when_stdout_is_gone():
    # The reader closed the pipe: Python's own exit reports it (as before the fast exit existed);
    # the process must not hang or pretend success.
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        from hoopcli.launcher import fast_exit
        time.sleep(0.3)
        sys.stdout.write("y" * 1_000_000)
        fast_exit(0)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    proc.wait(timeout=60)
    assert proc.returncode != 0


def test_resume_gc_freezes_the_startup_heap_and_turns_the_collector_back_on():
    proc = _python("""
        import gc
        gc.disable()
        from hoopcli import launcher
        launcher.pause_gc()
        assert not gc.isenabled()
        launcher.resume_gc()
        assert gc.isenabled() and gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        launcher.resume_gc()                       # only once: a second call changes nothing
        assert gc.get_freeze_count() == frozen
        print("ok")
    """)
    assert proc.stdout.strip() == b"ok", proc.stderr


def test_resume_gc_is_a_no_op_unless_the_launcher_paused_it():
    proc = _python("""
        import gc
        from hoopcli import launcher
        launcher.resume_gc()
        assert gc.isenabled() and gc.get_freeze_count() == 0
        print("ok")
    """)
    assert proc.stdout.strip() == b"ok", proc.stderr


def test_installed_launcher_pauses_the_gc_before_importing_hoop(tmp_path):
    from hoopcli.agents.shimfile import install_shim

    text = install_shim(tmp_path, python=sys.executable).read_text()
    assert text.index("gc.disable()") < text.index("from hoopcli")
    assert "launch()" in text


@pytest.mark.parametrize("fast_exit", ["1", "0"])
def test_launcher_output_and_exit_status_are_exact_either_way(shim_world, fast_exit):
    s3 = shim_world.s3()
    s3.create_bucket(Bucket=f"launcher-{fast_exit}")
    payload = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket=f"launcher-{fast_exit}", Key="blob", Body=payload)
    env = {"HOOP_FAST_EXIT": fast_exit}
    got = shim_world.exec("s3", "cp", f"s3://launcher-{fast_exit}/blob", "-", env=env)
    assert got.code == 0, got.stderr
    assert got.out == payload
    missing = shim_world.exec("s3api", "head-bucket", "--bucket", "no-such-bucket-here", env=env)
    assert missing.code == 255, missing.stderr     # awscli v1: a service error exits 255


def test_call_with_room_returns_and_raises_like_a_plain_call():
    from hoopcli.launcher import call_with_room

    assert call_with_room(lambda: 42) == 42
    with pytest.raises(KeyError):
        call_with_room(lambda: {}["missing"])


@pytest.mark.skipif(sys.version_info < (3, 11) or sys.implementation.name != "cpython",
                    reason="frames live on a chunked stack only in CPython 3.11+")
def test_call_with_room_reserves_a_frame_bigger_than_two_stack_chunks():
    # > 32 KB of frame makes CPython give it a 64 KB chunk of its own (see hoopcli.launcher._with_room)
    from hoopcli.launcher import call_with_room

    assert call_with_room.__code__.co_stacksize * 8 > 32 * 1024


def test_a_launcher_in_a_homes_bin_dir_uses_that_home_when_hoop_home_is_unset(shim_world, monkeypatch):
    from hoopcli.agents.shimfile import install_shim

    monkeypatch.setenv("HOOP_HOME", str(shim_world.home))
    launcher = install_shim()                                  # default: HOOP_HOME/bin
    assert launcher == shim_world.home / "bin" / "aws"
    assert repr(str(shim_world.home)) in launcher.read_text()
    env = {k: v for k, v in shim_world.environ.items() if k != "HOOP_HOME"}
    env["PATH"] = os.pathsep.join([str(launcher.parent), env["PATH"]])
    ran = subprocess.run([str(launcher), "s3api", "list-buckets"], env=env, capture_output=True, timeout=120)
    assert ran.returncode == 0, ran.stderr             # logged in: the home was found without HOOP_HOME
    # HOOP_HOME in the environment still wins: an empty home is not logged in
    other = {**env, "HOOP_HOME": str(shim_world.home.parent / "elsewhere")}
    refused = subprocess.run([str(launcher), "s3api", "list-buckets"], env=other, capture_output=True, timeout=120)
    assert refused.returncode == 65, refused.stderr


def test_a_launcher_elsewhere_names_no_home(tmp_path, monkeypatch):
    from hoopcli.agents.shimfile import install_shim

    monkeypatch.setenv("HOOP_HOME", str(tmp_path / "home"))
    text = install_shim(tmp_path / "elsewhere").read_text()
    assert "launch()" in text and str(tmp_path / "home") not in text


def test_an_internal_error_is_one_line_and_a_log_of_frames_without_the_message(shim_world, monkeypatch):
    import stat

    import hoopcli.parse

    def broken(argv):
        raise RuntimeError("password=s3cr3t-canary")

    monkeypatch.setattr(hoopcli.parse, "parse", broken)
    result = shim_world.run("s3api", "list-buckets", env={"HOOP_DEBUG": ""})
    assert result.code == 70
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hoop: internal error (RuntimeError)")
    log = shim_world.home / "logs" / "shim-errors.log"
    assert str(log) in lines[0]
    text = log.read_text()
    assert "builtins.RuntimeError" in text and "in broken" in text and "shim.py" in text
    assert "s3cr3t" not in text and "s3cr3t" not in result.stderr
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_hostile_home_path_cannot_inject_code_into_the_launcher(tmp_path, monkeypatch):
    import ast

    from hoopcli.agents.shimfile import install_shim

    home = tmp_path / "q'uo\"te\\back\nline') ; import os; os.system('x"
    monkeypatch.setenv("HOOP_HOME", str(home))
    text = install_shim().read_text()
    calls = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)]
    assert [ast.unparse(c.func) for c in calls] == ["gc.disable", "launch"]
    assert ast.literal_eval(calls[1].args[0]) == str(home)


def test_hoop_debug_shows_frames_never_the_message(shim_world, monkeypatch):
    """An agent can set HOOP_DEBUG: it gets where the error happened, never the message."""
    import hoopcli.parse

    def broken(argv):
        raise RuntimeError("password=s3cr3t-canary")

    monkeypatch.setattr(hoopcli.parse, "parse", broken)
    result = shim_world.run("s3api", "list-buckets", env={"HOOP_DEBUG": "1"})
    assert result.code == 70
    assert "in broken" in result.stderr and "s3cr3t" not in result.stderr
