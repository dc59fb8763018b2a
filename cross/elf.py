#!/usr/bin/env python3
"""ELF facts of a built wisp binary, and the OpenBSD program-header fix.

    elf.py check TARGET FILE        assert OS/ABI, interpreter, NEEDED and headers for TARGET
    elf.py info FILE                print them as JSON
    elf.py openbsd-nobtcfi FILE     retype PT_GNU_STACK as PT_OPENBSD_NOBTCFI, in place
    elf.py brand-freebsd FILE       set EI_OSABI to FreeBSD, in place (what brandelf -t FreeBSD does)
    elf.py selftest FILE            check the retyping on a copy of any 64-bit ELF with PT_GNU_STACK

Standard library only: it runs wherever python3 does.
"""
import json
import struct
import sys

PT_INTERP = 3
PT_DYNAMIC = 2
PT_NOTE = 4
PT_GNU_STACK = 0x6474E551
PT_OPENBSD_NOBTCFI = 0x65A3DBE8
DT_NEEDED = 1
DT_STRTAB = 5
OSABI = {0: "SYSV", 3: "Linux", 9: "FreeBSD", 12: "OpenBSD", 2: "NetBSD"}
MACHINE = {62: "x86_64", 183: "aarch64"}

# What each OS must look like. NEEDED may only name base-system libraries.
EXPECT = {
    "netbsd": {
        "osabi": {"SYSV", "NetBSD"},
        "interp": {"/usr/libexec/ld.elf_so", "/libexec/ld.elf_so"},
        "needed": {"libc.so.12", "libpthread.so.1", "libm.so.0", "libexecinfo.so.0",
                   "librt.so.1", "libutil.so.7", "libgcc_s.so.1"},
        "note": b"NetBSD",
    },
    "freebsd": {
        "osabi": {"FreeBSD"},
        "interp": {"/libexec/ld-elf.so.1"},
        "needed": {"libc.so.7", "libthr.so.3", "libm.so.5", "libexecinfo.so.1",
                   "librt.so.1", "libutil.so.9", "libgcc_s.so.1", "libsys.so.7"},
        "note": b"FreeBSD",
    },
    "openbsd": {
        "osabi": {"SYSV", "OpenBSD"},
        "interp": {"/usr/libexec/ld.so"},
        # OpenBSD bumps library majors every release; names are checked without the version.
        "needed": {"libc.so", "libpthread.so", "libm.so", "libc++abi.so", "libutil.so"},
        "note": b"OpenBSD",
    },
    "linux-musl": {"osabi": {"SYSV", "Linux"}, "interp": None, "needed": set(), "note": None},
}


class Elf:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = bytearray(f.read())
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            raise SystemExit(f"{path}: not a 64-bit little-endian ELF file")
        self.osabi = OSABI.get(d[7], str(d[7]))
        (self.type, self.machine, _, _, self.phoff, self.shoff, _, _, self.phentsize,
         self.phnum) = struct.unpack_from("<HHIQQQIHHH", d, 16)
        self.phdrs = []
        for i in range(self.phnum):
            off = self.phoff + i * self.phentsize
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", d, off)
            self.phdrs.append({"index": i, "off": off, "type": p_type, "offset": p_offset,
                               "vaddr": p_vaddr, "filesz": p_filesz})

    def interp(self):
        for p in self.phdrs:
            if p["type"] == PT_INTERP:
                return self.data[p["offset"]:p["offset"] + p["filesz"]].rstrip(b"\0").decode()
        return None

    def vaddr_to_offset(self, vaddr):
        for p in self.phdrs:
            if p["type"] == 1 and p["vaddr"] <= vaddr < p["vaddr"] + p["filesz"]:
                return vaddr - p["vaddr"] + p["offset"]
        return None

    def needed(self):
        dyn = next((p for p in self.phdrs if p["type"] == PT_DYNAMIC), None)
        if dyn is None:
            return []
        entries = []
        for off in range(dyn["offset"], dyn["offset"] + dyn["filesz"], 16):
            tag, val = struct.unpack_from("<qQ", self.data, off)
            if tag == 0:
                break
            entries.append((tag, val))
        strtab = next((v for t, v in entries if t == DT_STRTAB), None)
        base = self.vaddr_to_offset(strtab) if strtab is not None else None
        out = []
        for tag, val in entries:
            if tag == DT_NEEDED and base is not None:
                end = self.data.index(b"\0", base + val)
                out.append(self.data[base + val:end].decode())
        return out

    def notes(self):
        names = []
        for p in self.phdrs:
            if p["type"] != PT_NOTE:
                continue
            off, end = p["offset"], p["offset"] + p["filesz"]
            while off + 12 <= end:
                namesz, descsz, _ = struct.unpack_from("<III", self.data, off)
                name = bytes(self.data[off + 12:off + 12 + namesz]).rstrip(b"\0")
                names.append(name)
                off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        return names

    def info(self):
        return {
            "path": self.path,
            "osabi": self.osabi,
            "machine": MACHINE.get(self.machine, str(self.machine)),
            "interp": self.interp(),
            "needed": self.needed(),
            "notes": [n.decode(errors="replace") for n in self.notes()],
            "nobtcfi": any(p["type"] == PT_OPENBSD_NOBTCFI for p in self.phdrs),
            "gnu_stack": any(p["type"] == PT_GNU_STACK for p in self.phdrs),
        }


def os_of(target):
    if target.endswith("linux-musl"):
        return "linux-musl"
    return target.split("-")[2]


def check(target, path):
    elf = Elf(path)
    info = elf.info()
    exp = EXPECT[os_of(target)]
    arch = target.split("-")[0]
    problems = []
    if info["machine"] != arch:
        problems.append(f"machine {info['machine']}, expected {arch}")
    if info["osabi"] not in exp["osabi"]:
        problems.append(f"OS/ABI {info['osabi']}, expected one of {sorted(exp['osabi'])}")
    if exp["interp"] is None:
        if info["interp"] is not None or info["needed"]:
            problems.append(f"not static: interpreter {info['interp']}, NEEDED {info['needed']}")
    elif info["interp"] not in exp["interp"]:
        problems.append(f"interpreter {info['interp']}, expected one of {sorted(exp['interp'])}")
    for lib in info["needed"]:
        name = lib.split(".so")[0] + ".so" if os_of(target) == "openbsd" else lib
        if name not in exp["needed"]:
            problems.append(f"NEEDED {lib} is not a base-system library")
    if exp["note"] is not None and exp["note"] not in elf.notes():
        problems.append(f"no {exp['note'].decode()} ELF note")
    if os_of(target) == "openbsd" and not info["nobtcfi"]:
        problems.append("no PT_OPENBSD_NOBTCFI header: indirect branches would fault under IBT")
    if problems:
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"ok {target}: {info['osabi']} {info['machine']} interp={info['interp']} "
          f"NEEDED={','.join(info['needed']) or '-'}"
          + (" PT_OPENBSD_NOBTCFI" if info["nobtcfi"] else ""))


def openbsd_nobtcfi(path):
    """Rust emits no endbr64, so on OpenBSD >= 7.4 with IBT the kernel must be told not to enforce
    branch-target CFI. Zig's linker refuses -z nobtcfi; retype the unused PT_GNU_STACK instead (Go's
    linker emits the same header)."""
    elf = Elf(path)
    if any(p["type"] == PT_OPENBSD_NOBTCFI for p in elf.phdrs):
        return
    stack = next((p for p in elf.phdrs if p["type"] == PT_GNU_STACK), None)
    if stack is None:
        raise SystemExit(f"{path}: no PT_GNU_STACK header to retype")
    struct.pack_into("<I", elf.data, stack["off"], PT_OPENBSD_NOBTCFI)
    with open(path, "r+b") as f:
        f.write(elf.data)


def brand_freebsd(path):
    """Zig leaves EI_OSABI as SYSV; the kernel would accept the FreeBSD ABI note alone, but
    FreeBSD's own toolchain brands its binaries, and file(1) and tools look at the byte."""
    elf = Elf(path)
    if elf.data[7] != 9:
        elf.data[7] = 9
        with open(path, "r+b") as f:
            f.write(elf.data)


def selftest(path):
    import os
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "copy")
        shutil.copyfile(path, copy)
        before = Elf(copy)
        assert not any(p["type"] == PT_OPENBSD_NOBTCFI for p in before.phdrs), "already patched"
        assert any(p["type"] == PT_GNU_STACK for p in before.phdrs), "no PT_GNU_STACK to test with"
        openbsd_nobtcfi(copy)
        after = Elf(copy)
        types = [p["type"] for p in after.phdrs]
        assert PT_OPENBSD_NOBTCFI in types and PT_GNU_STACK not in types, types
        assert len(after.phdrs) == len(before.phdrs)
        # Only the four bytes of that p_type changed.
        diff = [i for i, (a, b) in enumerate(zip(before.data, after.data)) if a != b]
        assert len(diff) <= 4 and len(after.data) == len(before.data), diff
        openbsd_nobtcfi(copy)  # idempotent
        assert Elf(copy).data == after.data
    print("ok elf.py selftest")


def main(argv):
    if len(argv) == 4 and argv[1] == "check":
        check(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "info":
        print(json.dumps(Elf(argv[2]).info(), indent=2))
    elif len(argv) == 3 and argv[1] == "brand-freebsd":
        brand_freebsd(argv[2])
    elif len(argv) == 3 and argv[1] == "selftest":
        selftest(argv[2])
    elif len(argv) == 3 and argv[1] == "openbsd-nobtcfi":
        openbsd_nobtcfi(argv[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
