#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_metrics_http.

Seeds are a few valid and near-valid inputs in each target's input format
(the comment at the top of tests/fuzz/fuzz_<target>.c), built here so that
they can be made again and changed with the format: run it from anywhere,
it writes into tests/fuzz/corpus/<target>/ next to it and overwrites only
the seeds it names.  Crash reproducers saved there stay as they are.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_metrics_http: byte 0 is the largest chunk (0: one read), bit 7
# sends the rest over and over.
GET = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
METRICS = {
    "get_metrics": b"\x00" + GET,
    "get_metrics_bytewise": b"\x01" + GET,
    "get_metrics_chunks": b"\x07" + GET,
    "head_healthz": b"\x05HEAD /healthz HTTP/1.1\r\n\r\n",
    "healthz_http10": b"\x00GET /healthz HTTP/1.0\r\n\r\n",
    "query": b"\x03GET /metrics?name[]=tether HTTP/1.1\r\n\r\n",
    "absolute_url": b"\x00GET http://x/metrics HTTP/1.1\r\n\r\n",
    "not_found": b"\x00GET /nope HTTP/1.1\r\n\r\n",
    "post": b"\x02POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    "chunked_body": b"\x04GET /metrics HTTP/1.1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "pipelined": b"\x00" + GET + b"GET /healthz HTTP/1.1\r\n\r\n",
    "garbage": b"\x00\x16\x03\x01garbage\r\n\r\n",
    "bad_version": b"\x00GET /metrics HTTP/9.x\r\n\r\n",
    "lf_only": b"\x00GET /metrics HTTP/1.1\nHost: x\n\n",
    "incomplete": b"\x09GET /metrics HTTP/1.1\r\nHost:",
    "long_url": b"\x0d" + b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n",
    "url_at_cap": b"\x11" + b"GET /" + b"a" * 254 + b" HTTP/1.1\r\n\r\n",
    # Too long, and a control byte past the cap: 414 or 400 by the cuts.
    "long_bad_url": b"\x11" + b"GET /\xff" + b"a" * 270 + b"\x01a HTTP/1.1"
    b"\r\n\r\n",
    "endless_header": b"\xc0GET /metrics HTTP/1.1\r\nX-Pad: xxxxxxxxxxxx",
    "endless_requests": b"\x80" + GET,
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("fuzz_metrics_http", METRICS)


if __name__ == "__main__":
    main()
