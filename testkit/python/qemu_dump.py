#!/usr/bin/env python3
"""A QEMU wrapper (`TWI_QEMU`) that dumps the guest's RAM when the runtime has finished.

Used by tests/memory.rs: the tests look in the dump for the workload's private keys and
ECDSA per-signature nonces outside the runtime's vault. Environment:

    TWI_DUMP_FILE   where to write the dump (RAM from physical address 0, -m bytes)
    TWI_DUMP_QEMU   the real QEMU (default: qemu-system-x86_64)
    TWI_DUMP_AT     optional: a console text; at the first line holding it the VM is stopped,
                    dumped to TWI_DUMP_AT_FILE and continued (a dump in the middle of a run,
                    e.g. while a signed request awaits its answer)

What it changes in the command line `twi run` gives it, and why:

- the `isa-debug-exit` device is left out, so the runtime's final port write does not end
  QEMU: the runtime then halts its vCPU (interrupts off), with its memory as it left it;
- a QMP socket is added (private, in a temporary directory), through which the dump is taken
  (`pmemsave`) once the console shows the runtime's last line ("done in ... us since reset");
  then QEMU is told to quit.

The console (QEMU's stdout) passes through unchanged. The exit status stands in for the
debug-exit device: 33 (the runtime's success) once the dump is written; 1 if the console
never showed the last line or the dump failed.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

LAST_LINE = re.compile(rb"\bdone in \d+ us since reset")
SUCCESS = 33  # (0x10 << 1) | 1, what QEMU exits with when the runtime writes ExitCode::Success


def memory_bytes(args):
    size = args[args.index("-m") + 1]
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1].upper()] if size[-1].isalpha() else int(size) << 20


def rewrite(args, monitor):
    out, i = [], 0
    while i < len(args):
        if args[i] == "-device" and args[i + 1].startswith("isa-debug-exit"):
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out + ["-qmp", f"unix:{monitor},server=on,wait=off"]


class Qmp:
    """A QMP client (QEMU Machine Protocol: one JSON object per line)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(120)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.read()  # the greeting
        self.execute("qmp_capabilities")

    def read(self):
        while True:
            message = json.loads(self.file.readline())
            if "event" not in message:
                return message

    def execute(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        reply = self.read()
        if "error" in reply:
            raise RuntimeError(f"{command}: {reply['error']}")
        return reply


def main():
    qemu = os.environ.get("TWI_DUMP_QEMU", "qemu-system-x86_64")
    args = sys.argv[1:]
    if "-m" not in args:  # `--version` and other probes
        os.execvp(qemu, [qemu] + args)
    dump = os.environ["TWI_DUMP_FILE"]
    monitor = os.path.join(tempfile.mkdtemp(prefix="twi-dump-"), "monitor")
    child = subprocess.Popen([qemu] + rewrite(args, monitor), stdout=subprocess.PIPE)
    finished = False
    at = os.environ.get("TWI_DUMP_AT", "").encode()
    qmp = None  # one QMP session for the run (the socket takes one client)
    for line in iter(child.stdout.readline, b""):
        if at and at in line:
            at = b""
            qmp = Qmp(monitor)
            qmp.execute("stop")
            qmp.execute("pmemsave", val=0, size=memory_bytes(args), filename=os.environ["TWI_DUMP_AT_FILE"])
            qmp.execute("cont")
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
        if LAST_LINE.search(line):
            finished = True
            break
    status = 1
    if finished:
        time.sleep(0.5)  # the exit path: the port write, then HLT
        try:
            qmp = qmp or Qmp(monitor)
            qmp.execute("pmemsave", val=0, size=memory_bytes(args), filename=dump)
            if os.path.getsize(dump) == memory_bytes(args):
                status = SUCCESS
            else:
                sys.stderr.write(f"qemu_dump: {dump} is not the whole RAM\n")
            qmp.execute("quit")
        except (OSError, RuntimeError, ValueError) as e:
            sys.stderr.write(f"qemu_dump: no dump in {dump}: {e}\n")
            child.kill()
    else:
        sys.stderr.write("qemu_dump: the runtime never printed its last line\n")
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
    sys.exit(status)


if __name__ == "__main__":
    main()
