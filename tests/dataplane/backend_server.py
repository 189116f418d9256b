"""A provider backend for the data-plane tests: greets with what it knows about the caller, then echoes.

Run as ``python backend_server.py --listen ADDR:PORT --name NAME [--proxy-v2]`` (inside a netns).
The greeting is one JSON line: {"server", "client", "marker", "command"}; with ``--proxy-v2`` the
client address and marker come from the PROXY v2 header (docs/proxy-protocol.md), which is parsed
here independently of the gateway code.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import struct
import sys

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_TYPE_UNIQUE_ID = 0x05


def parse_proxy_v2(header: bytes, body: bytes) -> dict[str, object]:
    if header[:12] != SIGNATURE:
        raise ValueError("no PROXY v2 signature")
    version_command, family_protocol, _length = struct.unpack("!BBH", header[12:16])
    if version_command >> 4 != 2:
        raise ValueError("not version 2")
    command = "PROXY" if version_command & 0x0F == 1 else "LOCAL"
    result: dict[str, object] = {"command": command, "client": None, "marker": None, "tlvs": {}}
    family = family_protocol >> 4
    offset = 0
    if family == 1:  # AF_INET: src, dst, sport, dport
        src, dst = ipaddress.IPv4Address(body[0:4]), ipaddress.IPv4Address(body[4:8])
        sport, dport = struct.unpack("!HH", body[8:12])
        offset = 12
        result["client"] = f"{src}:{sport}"
        result["destination"] = f"{dst}:{dport}"
    elif family == 2:  # AF_INET6
        src6, dst6 = ipaddress.IPv6Address(body[0:16]), ipaddress.IPv6Address(body[16:32])
        sport, dport = struct.unpack("!HH", body[32:36])
        offset = 36
        result["client"] = f"[{src6}]:{sport}"
        result["destination"] = f"[{dst6}]:{dport}"
    tlvs: dict[int, str] = {}
    while offset + 3 <= len(body):
        kind, size = struct.unpack("!BH", body[offset : offset + 3])
        tlvs[kind] = body[offset + 3 : offset + 3 + size].decode(errors="replace")
        offset += 3 + size
    result["tlvs"] = tlvs
    if PP2_TYPE_UNIQUE_ID in tlvs:
        result["marker"] = tlvs[PP2_TYPE_UNIQUE_ID]
    return result


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, proxy_v2: bool
) -> None:
    try:
        peer = writer.get_extra_info("peername")
        info: dict[str, object] = {"server": name, "client": f"{peer[0]}:{peer[1]}", "marker": None}
        if proxy_v2:
            header = await reader.readexactly(16)
            (length,) = struct.unpack("!H", header[14:16])
            body = await reader.readexactly(length)
            info.update(parse_proxy_v2(header, body))
            info["via"] = f"{peer[0]}:{peer[1]}"
        info.pop("tlvs", None)
        writer.write(json.dumps(info).encode() + b"\n")
        await writer.drain()
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(listen: str, name: str, proxy_v2: bool) -> None:
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, name, proxy_v2), host, int(port), backlog=4096, reuse_address=True
    )
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--proxy-v2", action="store_true")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(serve(args.listen, args.name, args.proxy_v2))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
