#!/usr/bin/env python3
"""A TCP upstream that accepts every connection and never answers.

Used by bench/run for the 504 failure storm: NGINX connects, sends its request and
waits until proxy_read_timeout fires; then it closes the connection and this listener
closes its side. Prints the port it listens on (127.0.0.1 only), then serves until
SIGTERM.
"""
import resource
import selectors
import signal
import socket
import sys


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(ls.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # EMFILE and friends: the next round retries
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, True)
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()


if __name__ == "__main__":
    main()
