#!/usr/bin/env python3
"""Packs atoll-fw.bin per docs/qemu-boot.md (test helper for the monitor):
pack.py OUT MONITOR.bin KIND:LOAD:IMAGE.bin ..."""
import hashlib
import struct
import sys

FLASH = 64 << 20
TABLE = 0x10_0000


def main():
    out, monitor, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    mon = open(monitor, "rb").read()
    assert len(mon) <= TABLE, "monitor above 1 MiB"
    flash = bytearray(FLASH)
    flash[: len(mon)] = mon
    pos = TABLE + 16 + 64 * len(specs)
    table = bytearray(b"ATOLLFW1" + struct.pack("<II", len(specs), 0))
    for spec in specs:
        kind, load, path = spec.split(":", 2)
        data = open(path, "rb").read()
        pos = (pos + 0xFFF) & ~0xFFF
        signer = hashlib.sha256(b"atoll test signer " + kind.encode()).digest()
        table += struct.pack("<IIQQQ", int(kind), 0, pos, len(data), int(load, 0)) + signer
        flash[pos : pos + len(data)] = data
        pos += len(data)
    flash[TABLE : TABLE + len(table)] = table
    open(out, "wb").write(flash)


if __name__ == "__main__":
    main()
