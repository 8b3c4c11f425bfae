"""The SSH side of the emulator: paramiko server, public-key auth only.

One accept thread; paramiko runs one transport thread per connection; each
exec request gets a session thread that runs a `gerrit` command or pipes
real ``git upload-pack``/``receive-pack`` through the channel. Every thread
and socket is tracked so ``stop()`` leaves nothing behind."""

from __future__ import annotations

import io
import logging
import os
import queue
import select
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from gatekeeper.sim.gerrit.commands import GerritCommands, Session
from gatekeeper.sim.gerrit.events import EventBus, Subscriber
from gatekeeper.sim.gerrit.push import process_push
from gatekeeper.sim.gerrit.state import GerritState
from gatekeeper.sim.gerrit.tokenizer import split_command

log = logging.getLogger("gatekeeper.sim.gerrit.server")

TRANSPORT_LOG = "gatekeeper.sim.gerrit.transport"


def _quiet_disconnects(record: logging.LogRecord) -> bool:
    """A client vanishing mid-connection is routine for a server: log it at
    DEBUG instead of paramiko's ERROR "Socket exception: Connection reset"."""
    if record.levelno >= logging.ERROR and str(record.msg).startswith("Socket exception"):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(TRANSPORT_LOG).isEnabledFor(logging.DEBUG)
    return True


logging.getLogger(TRANSPORT_LOG).addFilter(_quiet_disconnects)

GIT_COMMANDS = {"git-upload-pack": "upload-pack", "git-receive-pack": "receive-pack"}
_POLL = 0.25  # how often idle stream writers look for a closed channel / stop


def load_or_create_host_key(path: Path) -> paramiko.Ed25519Key:
    """ed25519 host key persisted under the emulator's root (stable across restarts)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                               "gerrit-emulator", "-f", str(path)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ssh-keygen failed: {proc.stderr.strip()}")
    return paramiko.Ed25519Key.from_private_key_file(str(path))


class _Transport(paramiko.Transport):
    """Lets a session start only after paramiko has answered its exec request.

    paramiko replies to "exec" after ``check_channel_exec_request`` returns;
    a fast command could otherwise send data, exit status and close before
    that reply, which clients report as "Channel closed"."""

    def __init__(self, sock: socket.socket):
        super().__init__(sock)
        self.exec_gates: dict[int, threading.Event] = {}

    # A private paramiko hook (every reply passes it); its stubs leave it out.
    def _send_user_message(self, data: paramiko.Message) -> None:
        super()._send_user_message(data)  # type: ignore[misc]
        raw = data.asbytes()
        if raw[:1] in (bytes([paramiko.common.MSG_CHANNEL_SUCCESS]),
                       bytes([paramiko.common.MSG_CHANNEL_FAILURE])) and len(raw) >= 5:
            gate = self.exec_gates.pop(int.from_bytes(raw[1:5], "big"), None)
            if gate is not None:
                gate.set()


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: SshServer):
        self.server = server
        self.username: str | None = None
        self.env: dict[int, dict[str, str]] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_none(self, username: str) -> int:
        return paramiko.common.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return paramiko.common.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.server.authorize(username, key):
            self.username = username
            return paramiko.common.AUTH_SUCCESSFUL
        log.info("rejected public key for %r", username)
        return paramiko.common.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.common.OPEN_SUCCEEDED
        return paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_env_request(self, channel: paramiko.Channel, name: bytes | str,
                                  value: bytes | str) -> bool:
        name = name.decode() if isinstance(name, bytes) else name
        value = value.decode() if isinstance(value, bytes) else value
        if name == "GIT_PROTOCOL":  # git's protocol v2 negotiation, nothing else
            self.env.setdefault(channel.get_id(), {})[name] = value
            return True
        return False

    def check_channel_pty_request(self, *args: object) -> bool:
        return False

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return False

    def check_channel_exec_request(self, channel: paramiko.Channel,
                                   command: bytes | str) -> bool:
        if self.username is None:
            return False
        if isinstance(command, bytes):
            command = command.decode("utf-8", errors="replace")
        env = self.env.pop(channel.get_id(), {})
        gate = threading.Event()
        transport = channel.get_transport()
        if isinstance(transport, _Transport):
            transport.exec_gates[channel.remote_chanid] = gate
        else:
            gate.set()
        self.server.spawn_session(channel, self.username, command, env, gate)
        return True


class SshServer:
    def __init__(self, state: GerritState, bus: EventBus, commands: GerritCommands,
                 host_key: paramiko.PKey, host: str = "127.0.0.1", port: int = 0):
        self.state = state
        self.bus = bus
        self.commands = commands
        self.host_key = host_key
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._sessions: list[threading.Thread] = []
        self._procs: set[subprocess.Popen[bytes]] = set()

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._accept_thread = threading.Thread(target=self._accept_loop,
                                               name=f"gerrit-emu-accept-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        log.info("Gerrit emulator listening on %s:%d", self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self.bus.drop_all()
        with self._lock:
            transports = list(self._transports)
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for t in transports:
            t.close()
        for t in transports:
            if t.is_alive():
                t.join(timeout)
        with self._lock:
            sessions = list(self._sessions)
        for th in sessions:
            th.join(timeout)
        log.info("Gerrit emulator on port %d stopped", self.port)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._sock], [], [], _POLL)
            if not ready:
                continue
            try:
                conn, addr = self._sock.accept()
            except OSError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport = _Transport(conn)
            transport.set_log_channel(TRANSPORT_LOG)
            transport.add_server_key(self.host_key)
            transport.set_keepalive(0)
            try:
                # With an event, start_server returns at once; negotiation
                # and auth run on the transport's own thread.
                transport.start_server(event=threading.Event(), server=_Interface(self))
            except (paramiko.SSHException, OSError) as e:
                log.info("SSH negotiation with %s failed: %s", addr, e)
                transport.close()
                continue
            with self._lock:
                self._transports = [t for t in self._transports if t.is_active()]
                self._transports.append(transport)

    # --- auth -----------------------------------------------------------------
    def authorize(self, username: str, key: paramiko.PKey) -> bool:
        acct = self.state.accounts.get(username)
        if acct is None:
            return False
        blob = key.get_base64()
        return any(k.split()[1] == blob for k in acct.public_keys)

    # --- sessions ---------------------------------------------------------------
    def spawn_session(self, channel: paramiko.Channel, username: str, command: str,
                      env: dict[str, str], gate: threading.Event) -> None:
        th = threading.Thread(target=self._run_session,
                              args=(channel, username, command, env, gate),
                              name=f"gerrit-emu-session-{self.port}", daemon=True)
        with self._lock:
            self._sessions = [s for s in self._sessions if s.is_alive()]
            self._sessions.append(th)
        th.start()

    def _run_session(self, channel: paramiko.Channel, username: str, command: str,
                     env: dict[str, str], gate: threading.Event) -> None:
        status: int | None = 1
        # Bounded: if paramiko's internals change we only lose the ordering.
        gate.wait(5)
        try:
            argv = split_command(command)
            log.debug("%s runs %r", username, argv[:2])
            if argv and (argv[0] in GIT_COMMANDS or (argv[0] == "git" and len(argv) > 1
                                                      and "git-" + argv[1] in GIT_COMMANDS)):
                if argv[0] == "git":
                    argv = ["git-" + argv[1], *argv[2:]]
                status = self._run_git(channel, username, argv, env)
            else:
                session = Session(username=username,
                                  read_stdin=lambda: _read_all(channel),
                                  out=lambda s: channel.sendall(s.encode("utf-8")),
                                  err=lambda s: channel.sendall_stderr(s.encode("utf-8")),
                                  stream=lambda types: self._stream(channel, username, types))
                status = self.commands.run(argv, session)
        except (OSError, EOFError, paramiko.SSHException) as e:
            log.debug("session of %s ended: %s", username, e)
            status = None
        except Exception:
            log.exception("command %r of %s failed", command[:200], username)
            try:
                channel.sendall_stderr(b"fatal: internal server error\n")
            except (OSError, EOFError, paramiko.SSHException):
                status = None
        finally:
            try:
                if status is not None and not channel.closed:
                    channel.send_exit_status(status)
            except (OSError, EOFError, paramiko.SSHException):
                pass
            try:
                channel.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the client dropped the connection first (drop_streams, a crash)

    def _stream(self, channel: paramiko.Channel, username: str, types: frozenset[str]
                ) -> int | None:
        transport = channel.get_transport()

        def drop(mode: str) -> None:
            if mode == "channel":
                channel.close()
            else:
                transport.close()

        sub = Subscriber(username, types, drop=drop)
        self.bus.subscribe(sub)
        log.info("%s subscribed to stream-events%s", username,
                 f" ({', '.join(sorted(types))})" if types else "")
        try:
            while not self._stopping.is_set():
                try:
                    line = sub.lines.get(timeout=_POLL)
                except queue.Empty:
                    line = ""
                if channel.closed or not transport.is_active():
                    return None
                if line is None:
                    return sub.end_status
                if line:
                    channel.sendall(line.encode("utf-8"))
            return None
        finally:
            self.bus.unsubscribe(sub)

    # --- git over SSH -------------------------------------------------------------
    def _run_git(self, channel: paramiko.Channel, username: str, argv: list[str],
                 env: dict[str, str]) -> int | None:
        sub = GIT_COMMANDS[argv[0]]
        if len(argv) != 2:
            channel.sendall_stderr(f"fatal: usage: {argv[0]} '/project'\n".encode())
            return 1
        name = argv[1].strip("/")
        name = name.removesuffix(".git")
        repo = self.state.projects.get(name)
        if repo is None:
            channel.sendall_stderr(f"fatal: project {name} not found\n".encode())
            return 1
        if sub == "receive-pack":
            acct = self.state.accounts.get(username)
            if acct is None or not ({"push", "administrate-server"} & acct.capabilities):
                channel.sendall_stderr(b"fatal: push not permitted\n")
                return 1
            # git's post-receive hook writes exactly this push's ref updates
            # ("old new ref" lines) to a file of ours; they become ref-updated
            # events, or changes for refs/for/*, before the client hears the end.
            with tempfile.TemporaryDirectory(prefix="gk-gerrit-push-") as tmp:
                push_log = Path(tmp) / "refs"
                self._pipe_git(channel, sub, repo.path, {**env, "GK_PUSH_LOG": str(push_log)},
                               after=lambda status: self._after_push(channel, name, push_log,
                                                                     username))
            return None
        self._pipe_git(channel, sub, repo.path, env)
        return None

    def _after_push(self, channel: paramiko.Channel, project: str, push_log: Path,
                    username: str) -> None:
        lines = push_log.read_text().splitlines() if push_log.exists() else []
        report: list[str] = []
        for line in lines:
            old, new, ref = line.split(" ", 2)
            if ref.startswith("refs/for/"):
                report += process_push(self.state, project, ref, new, username)
            else:
                self.state.ref_pushed(project, ref, old, new, username)
        if report:
            # Like Gerrit's "remote:" summary of a review push.
            text = "".join(f"remote: {line}\n" for line in ["", "SUCCESS", "", *report, ""])
            try:
                channel.sendall_stderr(text.encode("utf-8"))
            except (OSError, EOFError, paramiko.SSHException):
                pass

    def _pipe_git(self, channel: paramiko.Channel, sub: str, path: Path,
                  env: dict[str, str], after: Callable[[int], None] | None = None) -> None:
        """Runs git with the channel as its stdio; sends the exit status itself."""
        full_env = dict(os.environ)
        full_env.update({"GIT_CONFIG_NOSYSTEM": "1"})
        full_env.update(env)
        proc = subprocess.Popen(["git", sub, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        with self._lock:
            self._procs.add(proc)
        assert proc.stdin and proc.stdout and proc.stderr
        # Buffered pipes (Popen's default): read1 hands over what arrived without waiting to fill.
        assert isinstance(proc.stdout, io.BufferedReader)
        assert isinstance(proc.stderr, io.BufferedReader)
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        def pump_in() -> None:
            try:
                while True:
                    data = channel.recv(65536)
                    if not data:
                        break
                    stdin.write(data)
                    stdin.flush()
            except (OSError, EOFError, ValueError, paramiko.SSHException):
                pass
            finally:
                try:
                    stdin.close()
                except OSError:
                    pass

        def pump_err() -> None:
            try:
                while data := stderr.read1(65536):
                    channel.sendall_stderr(data)
            except (OSError, EOFError, ValueError, paramiko.SSHException):
                pass

        threads = [threading.Thread(target=pump_in, name="gerrit-emu-git-in", daemon=True),
                   threading.Thread(target=pump_err, name="gerrit-emu-git-err", daemon=True)]
        for th in threads:
            th.start()
        try:
            while data := stdout.read1(65536):
                channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException):
            proc.kill()
        status = proc.wait()
        if status < 0:  # killed by a signal: report it the way a shell would
            status = 128 - status
        threads[1].join()
        stdout.close()
        stderr.close()
        with self._lock:
            self._procs.discard(proc)
        if after is not None:  # also after partial failures: the log has what landed
            after(status)
        # The client may keep stdin open: the exit status and close end the
        # session, and closing the channel wakes the stdin pump.
        try:
            channel.send_exit_status(status)
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the client already went away (e.g. ls-remote style readers)
        channel.close()
        threads[0].join()


def _read_all(channel: paramiko.Channel) -> bytes:
    chunks = []
    while data := channel.recv(65536):
        chunks.append(data)
    return b"".join(chunks)

