"""Check the wheels prepare.sh put in .whl/: their total against the carry limit, and what the
ctranslate2 wheel needs at run time on CUDA, read from the wheel itself (RECORD, the ELF NEEDED
entries, the CUDA libraries named for dlopen, the GPU architectures its CUDA code is built for).

    python -m benchmarks.gpu.wheels .whl        (exits 1 when the total passes the limit)
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

LIMIT_MIB = 60
# CUDA libraries a program may dlopen at run time rather than link (so they are not in NEEDED).
CUDA_LIBRARY = re.compile(rb"lib(?:cublasLt|cublas|cudnn[a-z_]*|cudart|curand|cufft|cusparse|nccl|nvrtc)\.so\.\d+")
FATBIN_MAGIC = 0xBA55ED50
PTX, CUBIN = 1, 2


def sections(elf: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (offset, size, link) of an ELF64 little-endian file's sections."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    entsize, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [struct.unpack_from("<IIQQQQI", elf, shoff + i * entsize) for i in range(count)]
    names_offset = headers[names_index][4]
    result = {}
    for name, _type, _flags, _addr, offset, size, link in headers:
        end = elf.index(b"\0", names_offset + name)
        result[elf[names_offset + name : end].decode()] = (offset, size, link)
    return result


def needed(elf: bytes) -> list[str]:
    """The DT_NEEDED entries: libraries the loader must find before the program runs."""
    table = sections(elf)
    if ".dynamic" not in table:
        return []
    offset, size, _ = table[".dynamic"]
    strings = table[".dynstr"][0]
    names = []
    for position in range(offset, offset + size, 16):
        tag, value = struct.unpack_from("<qQ", elf, position)
        if tag == 1:  # DT_NEEDED
            names.append(elf[strings + value : elf.index(b"\0", strings + value)].decode())
    return names


def dlopened_cuda(elf: bytes) -> list[str]:
    return sorted({m.decode() for m in CUDA_LIBRARY.findall(elf)})


def fatbin_architectures(elf: bytes) -> dict[str, list[int]]:
    """SM versions with machine code (cubin) and with PTX in the .nv_fatbin section."""
    table = sections(elf)
    if ".nv_fatbin" not in table:
        return {"cubin": [], "ptx": []}
    offset, size, _ = table[".nv_fatbin"]
    data = elf[offset : offset + size]
    found: dict[int, set[int]] = {PTX: set(), CUBIN: set()}
    position = 0
    while position + 16 <= len(data):
        magic, _version, header, body = struct.unpack_from("<IHHQ", data, position)
        if magic != FATBIN_MAGIC:
            position += 8  # containers are 8-byte aligned
            continue
        entry, end = position + header, position + header + body
        while entry < end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", data, entry)
            found.setdefault(kind, set()).add(struct.unpack_from("<I", data, entry + 28)[0])
            entry += entry_header + entry_size
        position = end
    return {"cubin": sorted(found[CUBIN]), "ptx": sorted(found[PTX])}


def inspect_wheel(path: Path) -> dict[str, Any]:
    """Shared libraries of a wheel (from its RECORD) with what each needs."""
    with zipfile.ZipFile(path) as wheel:
        record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
        libraries = [line.split(",")[0] for line in wheel.read(record).decode().splitlines() if ".so" in line]
        report = {}
        for name in libraries:
            elf = wheel.read(name)
            report[name] = {
                "mib": round(len(elf) / 2**20, 1),
                "needed": needed(elf),
                "dlopen_cuda": dlopened_cuda(elf),
                **fatbin_architectures(elf),
            }
    return report


def summary(folder: Path) -> tuple[list[str], float]:
    lines, total = [], 0.0
    for wheel in sorted(folder.glob("*.whl")):
        mib = wheel.stat().st_size / 2**20
        total += mib
        lines.append(f"{mib:8.2f} MiB  {wheel.name}")
        if wheel.name.startswith("ctranslate2-"):
            for name, lib in inspect_wheel(wheel).items():
                if not (lib["dlopen_cuda"] or lib["cubin"] or lib["ptx"]):
                    continue
                lines.append(f"            {name} ({lib['mib']} MiB uncompressed)")
                lines.append(f"              NEEDED: {', '.join(lib['needed'])}")
                lines.append(f"              CUDA libraries opened at run time: {', '.join(lib['dlopen_cuda']) or '-'}")
                lines.append(f"              machine code for sm_{', sm_'.join(map(str, lib['cubin']))}; "
                             f"PTX for sm_{', sm_'.join(map(str, lib['ptx']))}")  # fmt: skip
                if "libcublas.so.12" in lib["dlopen_cuda"]:
                    lines.append(
                        "              -> needs CUDA 12's cuBLAS at run time (nvidia-cublas-cu12: 581 MB, far past "
                        "the carry limit); the run tries CUDA 13's cuBLAS under the CUDA 12 name and falls back "
                        "to transformers generate (benchmarks/gpu/ct2_cuda.py)"
                    )
                if lib["cubin"] and max(lib["cubin"]) < 90:
                    lines.append("              -> no sm_90 machine code: on an H100/H200 the driver compiles the PTX "
                                 "at first use (timed in the run as the probe's seconds to first outputs)")  # fmt: skip
    lines.append(f"{total:8.2f} MiB  total (limit {LIMIT_MIB} MiB)")
    return lines, total


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".whl")
    lines, total = summary(folder)
    print("\n".join(lines))
    if total > LIMIT_MIB:
        sys.exit(f"{folder}: {total:.1f} MiB of wheels, over the {LIMIT_MIB} MiB limit")


if __name__ == "__main__":
    main()
