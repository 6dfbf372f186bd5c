"""The recipient's mail server on the Internet side of the e2e test: an
aiosmtpd server that stores each message in a directory and prints one
line per message, so the test waits for the line instead of polling."""

import os
import sys
import threading

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            path = os.path.join(self.outdir, f"msg{self.n}.eml")
        with open(path, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        print(f"sink: message from=<{envelope.mail_from}> to=<"
              f"{','.join(envelope.rcpt_tos)}> peer={session.peer[0]} "
              f"file={path}", flush=True)
        return "250 2.0.0 stored by the e2e sink"


def main():
    host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(outdir, exist_ok=True)
    c = Controller(Store(outdir), hostname=host, port=port,
                   decode_data=False)
    c.start()
    print("sink: ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
