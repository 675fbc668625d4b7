"""A shim-like writer process: appends records to the spool of HOOP_HOME, printing each id once its
append returned (so the parent knows which records the spool promised to keep).

    python writer.py COUNT [TEXT_BYTES]      COUNT < 0: forever
"""

from __future__ import annotations

import os
import sys

from hoopcli.paths import Layout
from hoopcli.record import shapes as recorder
from hoopcli.record.spool import Spool


def main() -> None:
    count = int(sys.argv[1])
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    spool = Spool(Layout.from_env())
    session = f"proc-{os.getpid()}"
    seq = 0
    while count < 0 or seq < count:
        cid = recorder.new_id()
        rec = recorder.record_result(command_id=cid, session_id=session, seq=seq, exit_code=0,
                                     stdout="o" * size, stderr="")
        spool.append(rec)
        sys.stdout.write(rec["id"] + "\n")
        sys.stdout.flush()
        seq += 1


if __name__ == "__main__":
    main()
