#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_xfer and fuzz_metrics_http.

Seeds are a few valid and near-valid inputs in each target's input format
(the comment at the top of tests/fuzz/fuzz_<target>.c), built here so that
they can be made again and changed with the format: run it from anywhere,
it writes into tests/fuzz/corpus/<target>/ next to it and overwrites only
the seeds it names.  Crash reproducers saved there stay as they are.
"""
import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# tether/proto.h, enum tether_msg.
ENTRY, ACCEPT, BLOCK, FILE_END, RESULT, SKIP, XFER_END = range(14, 21)
EXEC = 1
# fuzz_xfer.c's own records.
BREAK, WINDOW = 0xFE, 0xFF
# tether/msg.h.
FILE, DIR, SYMLINK = 1, 2, 3
RAW, DEFLATE = 0, 1
BLOCK_MAX = 192 * 1024

MTIME = 1700000000


def cstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def rec(msg, body=b""):
    return struct.pack(">BH", msg, len(body)) + body


def entry(kind, path, mode=0o644, size=0, target="", sec=MTIME, nsec=5):
    return rec(ENTRY, struct.pack(">B", kind) + cstr(path) +
               struct.pack(">IqIQ", mode, sec, nsec, size) + cstr(target))


def raw(data):
    return rec(BLOCK, bytes([RAW]) + data)


def deflated(data, tail=b""):
    return rec(BLOCK, bytes([DEFLATE]) + zlib.compress(data) + tail)


def file_end(data):
    return rec(FILE_END, b"\x01" + hashlib.sha256(data).digest())


def file_end_failed(reason):
    return rec(FILE_END, b"\x00" + cstr(reason))


def result(ok, reason=""):
    return rec(RESULT, bytes([1 if ok else 0]) + cstr(reason))


def accept(offset):
    return rec(ACCEPT, struct.pack(">Q", offset))


def skip(path, reason):
    return rec(SKIP, cstr(path) + cstr(reason))


def end():
    return rec(XFER_END)


def window(credit):
    return rec(WINDOW, struct.pack(">I", credit))


def temp_name(path, size, sec=MTIME, nsec=5):
    """The receiver's temporary name for a file ENTRY (xfer.c's temp_name)."""
    key = b"%s\0%d\0%d\0%d" % (path.encode(), size, sec, nsec)
    leaf = path.rsplit("/", 1)[-1]
    return ".%s.%s.tether-part" % (leaf, hashlib.sha256(key).hexdigest()[:16])


def one_file(path, data, blocks=None):
    """ENTRY, its blocks (raw data by default) and FILE_END."""
    out = entry(FILE, path, size=len(data))
    out += b"".join(blocks) if blocks is not None else raw(data)
    return out + file_end(data)


# What fuzz_xfer.c's scratch src/a.txt holds (its write_file()).
A_TXT = b"".join(b"%d a line of a file that compresses well\n" % i
                 for i in range(600))
TEXT = b"".join(b"2026-11-23 12:00:%02d svc[42]: all good\n" % (i % 60)
                for i in range(100))

# Receiver setups (byte 0, bit 7 clear) and sender setups (bit 7 set).
INTO, AS_NAME, NAMED, ANY_ONE, NAMED_R = 0x00, 0x01, 0x02, 0x06, 0x0A
SEND, SEND_R, SEND_RAW, SEND_SKIPS = 0x80, 0x81, 0x82, 0x84

XFER = {
    # The receiver: what a sender can send.
    "recv_raw": bytes([INTO]) + one_file("a.txt", b"hello") + end(),
    "recv_empty_file": bytes([INTO]) + one_file("e", b"", []) + end(),
    "recv_zlib": bytes([INTO]) + one_file("log.txt", TEXT, [deflated(TEXT)])
    + end(),
    "recv_two_blocks": bytes([INTO]) + one_file(
        "two", TEXT + b"raw tail", [deflated(TEXT), raw(b"raw tail")]) + end(),
    "recv_tree": bytes([INTO]) + entry(DIR, "d", 0o755)
    + one_file("d/f", b"in d\n") + entry(SYMLINK, "d/l", 0o777, 0, "f")
    + entry(DIR, "d/locked", 0) + entry(DIR, "d/locked/deeper", 0o500)
    + one_file("d/locked/deeper/g", b"g") + end(),
    "recv_skip": bytes([INTO]) + skip("/etc/shadow", "permission denied")
    + one_file("a", b"a") + end(),
    "recv_sha_mismatch": bytes([INTO]) + entry(FILE, "bad", size=3)
    + raw(b"abc") + file_end(b"abd") + one_file("good", b"ok") + end(),
    "recv_sender_failed": bytes([INTO]) + entry(FILE, "cut", size=10)
    + raw(b"abcd") + file_end_failed("file shrank while being sent")
    + end(),
    "recv_resume": bytes([INTO]) + entry(FILE, "big", size=10)
    + raw(b"0123") + rec(BREAK) + entry(FILE, "big", size=10)
    + raw(b"456789") + file_end(b"0123456789") + end(),
    "recv_as_name": bytes([AS_NAME]) + entry(DIR, "orig") + one_file(
        "orig/inner", b"inner") + one_file("other", b"beside") + end(),
    "recv_as_name_symlink_again": bytes([AS_NAME])
    + entry(SYMLINK, "orig", 0o777, 0, "/") + end() + rec(BREAK)
    + one_file("orig", b"replaces the link") + end(),
    "recv_named": bytes([NAMED]) + one_file("notes.txt", b"asked for")
    + one_file(".bashrc", b"planted") + end(),
    "recv_named_recursive": bytes([NAMED_R]) + entry(DIR, "d")
    + one_file("d/f", b"f") + end(),
    "recv_any_one": bytes([ANY_ONE]) + one_file("first", b"1")
    + one_file("second", b"2") + end(),
    "recv_dir_in_the_way": bytes([INTO]) + entry(DIR, "a")
    + one_file("a", b"x") + entry(SYMLINK, "a", 0o777, 0, "t") + end(),
    "recv_file_in_the_way": bytes([INTO]) + one_file("a", b"x")
    + entry(DIR, "a") + end(),
    # A sender that plants the receiver's temporary file first.
    "recv_temp_symlink": bytes([INTO])
    + entry(SYMLINK, temp_name("f", 4), 0o777, 0, "/etc/passwd")
    + one_file("f", b"data") + end(),
    "recv_temp_dir": bytes([INTO]) + entry(DIR, temp_name("f", 4))
    + one_file("f", b"data") + end(),
    "recv_temp_not_ours": bytes([INTO])
    + entry(FILE, temp_name("f", 4), 0o644, 2) + raw(b"da")
    + file_end(b"da") + one_file("f", b"data") + end(),
    "recv_temp_resumed": bytes([INTO])
    + entry(FILE, temp_name("f", 4), 0o600, 2) + raw(b"da")
    + file_end(b"da") + entry(FILE, "f", size=4) + raw(b"ta")
    + file_end(b"data") + end(),
    "recv_temp_longer": bytes([INTO])
    + one_file(temp_name("f", 4), b"0123456789") + one_file("f", b"data")
    + end(),
    "recv_escape": bytes([INTO]) + one_file("../escaped", b"x") + end(),
    "recv_through_symlink": bytes([INTO])
    + entry(SYMLINK, "s", 0o777, 0, "/tmp") + one_file("s/f", b"x") + end(),
    "recv_zlib_bomb": bytes([INTO]) + entry(FILE, "z", size=BLOCK_MAX + 1)
    + deflated(bytes(BLOCK_MAX + 1)),
    "recv_zlib_trailing": bytes([INTO]) + entry(FILE, "z", size=len(TEXT))
    + deflated(TEXT, b"trailing"),
    "recv_past_size": bytes([INTO]) + entry(FILE, "p", size=2)
    + raw(b"abc"),
    "recv_entry_in_data": bytes([INTO]) + entry(FILE, "p", size=2)
    + entry(FILE, "q", size=2),
    "recv_wrong_message": bytes([INTO]) + rec(EXEC, b"\x00\x00\x00\x00"),
    "recv_end_twice": bytes([INTO]) + end() + end(),
    # The sender of src/a.txt, src/d and src/s: what a receiver can
    # answer.
    "send_all": bytes([SEND]) + accept(0) + result(True) + end(),
    "send_no_compress": bytes([SEND_RAW]) + accept(0) + result(True) + end(),
    # a.txt; d/ with b and c (either order); s/ with l.
    "send_recursive": bytes([SEND_R]) + accept(0) + result(True) * 2
    + accept(0) + result(True) + accept(0) + result(True) * 3 + end(),
    "send_skips": bytes([SEND_SKIPS]) + accept(0) + result(True) + end(),
    "send_resume": bytes([SEND]) + accept(1000) + result(True) + end(),
    "send_resume_whole": bytes([SEND]) + accept(len(A_TXT)) + result(True)
    + end(),
    "send_accept_past_end": bytes([SEND]) + accept(len(A_TXT) + 1),
    "send_refused": bytes([SEND]) + result(False, "disk full") + end(),
    "send_window": bytes([SEND]) + window(0) + accept(0) + window(100)
    + window(1 << 20) + result(True) + end(),
    "send_break": bytes([SEND]) + accept(0) + rec(BREAK) + accept(0)
    + result(True) + end(),
    "send_early_end": bytes([SEND]) + end(),
    "send_bad_result": bytes([SEND]) + rec(RESULT, b"\x02" + cstr("")),
}

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
    write("fuzz_xfer", XFER)
    write("fuzz_metrics_http", METRICS)


if __name__ == "__main__":
    main()
