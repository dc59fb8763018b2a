#!/usr/bin/env python3
"""ELF facts of a built wisp binary, and the OpenBSD program-header fix.

    elf.py check TARGET FILE [OPENBSD_RELEASE]
                                    assert OS/ABI, interpreter, NEEDED, headers, notes, imports
                                    and instructions for TARGET (see check())
    elf.py info FILE                print them as JSON
    elf.py openbsd-nobtcfi FILE     retype PT_GNU_STACK as PT_OPENBSD_NOBTCFI, in place
    elf.py brand-freebsd FILE       set EI_OSABI to FreeBSD, in place (what brandelf -t FreeBSD does)
    elf.py selftest FILE            check the retyping on a copy of any 64-bit ELF with PT_GNU_STACK

Standard library only: it runs wherever python3 does. One check uses objdump(1) (binutils) when
it is installed: an x86_64 binary whose executable bytes contain 0f 05 is disassembled to tell a
real `syscall` instruction from those bytes inside another instruction; without objdump such a
binary fails the check. The data files beside this one: netbsd-renamed.txt (the functions
NetBSD's headers rename) and openbsd-libs.txt (each OpenBSD release's library names).
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

PT_INTERP = 3
PT_DYNAMIC = 2
PT_NOTE = 4
PT_TLS = 7
PT_GNU_STACK = 0x6474E551
PT_GNU_RELRO = 0x6474E552
PT_OPENBSD_NOBTCFI = 0x65A3DBE8
PF_X = 1
DT_NEEDED = 1
DT_STRTAB = 5
DT_BIND_NOW = 24
DT_FLAGS = 30
DT_FLAGS_1 = 0x6FFFFFFB
DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
SHT_DYNSYM = 11
SHT_GNU_VERSYM = 0x6FFFFFFF
SHF_EXECINSTR = 4
STB_WEAK = 2
SHN_UNDEF = 0
# The largest PT_TLS alignment to trust the BSDs' static TLS set-up with (issue 16's audit of
# their ld.so and kernel sources; Rust's and ring's thread-locals need at most 16).
MAX_TLS_ALIGN = 16
# ELF notes that say which OS a binary is for: name, and for each type the description size.
# Type 1 is the ABI/ident tag every binary must carry (NetBSD's sys/exec_elf.h
# NT_NETBSD_IDENT, FreeBSD's NT_FREEBSD_ABI_TAG, OpenBSD's ident note), 4 bytes of OS version.
OS_NOTES = {
    "netbsd": (b"NetBSD", {1: 4, 5: None, 6: None}),  # IDENT; MARCH and MCMODEL are strings
    "freebsd": (b"FreeBSD", {1: 4, 2: 4, 3: None, 4: 4}),  # ABI_TAG, NOINIT, ARCH, FEATURE_CTL
    "openbsd": (b"OpenBSD", {1: 4}),
}
# NetBSD 11 renamed these again; the plain name is still NetBSD 10's ABI, which the builds target
# (a NetBSD 11 build would need the new names: __dup3100, and __kevent100 instead of __kevent50).
NETBSD_RENAMED_AFTER_10 = {"dup3"}
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
        # Names without their major.minor (check_needed requires one, and openbsd-libs.txt has
        # each release's).
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
            (p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz,
             p_align) = struct.unpack_from("<IIQQQQQQ", d, off)
            self.phdrs.append({"index": i, "off": off, "type": p_type, "flags": p_flags,
                               "offset": p_offset, "vaddr": p_vaddr, "filesz": p_filesz,
                               "memsz": p_memsz, "align": p_align})
        shentsize, shnum, _ = struct.unpack_from("<HHH", d, 58)
        self.sections = []
        for i in range(shnum if self.shoff else 0):
            (sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, _,
             sh_entsize) = struct.unpack_from("<IIQQQQIIQQ", d, self.shoff + i * shentsize)
            self.sections.append({"type": sh_type, "flags": sh_flags, "addr": sh_addr,
                                  "offset": sh_offset, "size": sh_size, "link": sh_link,
                                  "entsize": sh_entsize})

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

    def dynamic(self):
        """The (tag, value) entries of PT_DYNAMIC up to DT_NULL; None without one."""
        dyn = next((p for p in self.phdrs if p["type"] == PT_DYNAMIC), None)
        if dyn is None:
            return None
        entries = []
        for off in range(dyn["offset"], dyn["offset"] + dyn["filesz"], 16):
            tag, val = struct.unpack_from("<qQ", self.data, off)
            if tag == 0:
                break
            entries.append((tag, val))
        return entries

    def bind_now(self):
        """Whether the dynamic linker resolves every symbol at start (so RELRO can cover the
        GOT): DT_BIND_NOW, DT_FLAGS with DF_BIND_NOW or DT_FLAGS_1 with DF_1_NOW. None when
        the file has no dynamic section."""
        entries = self.dynamic()
        if entries is None:
            return None
        return any(t == DT_BIND_NOW or (t == DT_FLAGS and v & DF_BIND_NOW)
                   or (t == DT_FLAGS_1 and v & DF_1_NOW) for t, v in entries)

    def needed(self):
        entries = self.dynamic() or []
        strtab = next((v for t, v in entries if t == DT_STRTAB), None)
        base = self.vaddr_to_offset(strtab) if strtab is not None else None
        out = []
        for tag, val in entries:
            if tag == DT_NEEDED and base is not None:
                end = self.data.index(b"\0", base + val)
                out.append(self.data[base + val:end].decode())
        return out

    def note_entries(self):
        """(name, type, namesz, descsz) of every note in the PT_NOTE segments."""
        out = []
        for p in self.phdrs:
            if p["type"] != PT_NOTE:
                continue
            off, end = p["offset"], p["offset"] + p["filesz"]
            while off + 12 <= end:
                namesz, descsz, n_type = struct.unpack_from("<III", self.data, off)
                name = bytes(self.data[off + 12:off + 12 + namesz]).rstrip(b"\0")
                out.append((name, n_type, namesz, descsz))
                off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
        return out

    def notes(self):
        return [name for name, _, _, _ in self.note_entries()]

    def cstr(self, off):
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode(errors="replace")

    def imports(self):
        """(name, weak, versioned) of every undefined dynamic symbol, from .dynsym and
        .gnu.version. None when the file has no section headers to find them."""
        dynsym = next((s for s in self.sections if s["type"] == SHT_DYNSYM), None)
        if dynsym is None:
            return None
        strtab = self.sections[dynsym["link"]]
        versym = next((s for s in self.sections if s["type"] == SHT_GNU_VERSYM), None)
        out = []
        for i in range(1, dynsym["size"] // 24):
            st_name, st_info, _, st_shndx = struct.unpack_from("<IBBH", self.data,
                                                               dynsym["offset"] + i * 24)
            if st_shndx != SHN_UNDEF:
                continue
            version = 0
            if versym is not None:
                version = struct.unpack_from("<H", self.data, versym["offset"] + i * 2)[0] & 0x7FFF
            # 0 is local, 1 the unversioned global: anything above names a version (NEEDED's).
            out.append((self.cstr(strtab["offset"] + st_name), st_info >> 4 == STB_WEAK,
                        version > 1))
        return out

    def executable_ranges(self):
        """(file offset, bytes) of the code: executable sections, or executable segments
        when the file has no section headers."""
        if self.sections:
            return [(s["offset"], bytes(self.data[s["offset"]:s["offset"] + s["size"]]))
                    for s in self.sections if s["flags"] & SHF_EXECINSTR and s["type"] != 8]
        return [(p["offset"], bytes(self.data[p["offset"]:p["offset"] + p["filesz"]]))
                for p in self.phdrs if p["type"] == 1 and p["flags"] & PF_X]

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
            "relro": any(p["type"] == PT_GNU_RELRO for p in self.phdrs),
            "bind_now": self.bind_now(),
            "tls_align": max((p["align"] for p in self.phdrs if p["type"] == PT_TLS), default=None),
        }


def load_table(name):
    """Rows of a tab-separated data file beside this script, without comments."""
    with open(os.path.join(HERE, name)) as f:
        return [line.rstrip("\n").split("\t") for line in f
                if line.strip() and not line.startswith("#")]


def netbsd_renamed():
    return {row[0]: row[1] for row in load_table("netbsd-renamed.txt")}


def openbsd_libs(release):
    """{library: file name} of one OpenBSD release, from openbsd-libs.txt."""
    libs = {lib: name for rel, lib, name in load_table("openbsd-libs.txt") if rel == release}
    if not libs:
        known = sorted({row[0] for row in load_table("openbsd-libs.txt")})
        raise SystemExit(f"OpenBSD release {release} is not in openbsd-libs.txt ({known})")
    return libs


OPENBSD_VERSIONED = re.compile(r"^(lib[\w+-]+\.so)\.\d+\.\d+$")


def syscall_offsets(elf, arch):
    """File offsets of system-call instructions in the code. The BSDs' system-call numbers and
    conventions are private to their libc (OpenBSD's kernel refuses system calls from anywhere
    else): a binary must not make its own."""
    found = []
    for base, code in elf.executable_ranges():
        if arch == "aarch64":
            # Fixed 4-byte instructions, 4-byte aligned: svc #0 is the word d4000001.
            start = (-base) % 4
            for i in range(start, len(code) - 3, 4):
                if code[i:i + 4] == b"\x01\x00\x00\xd4":
                    found.append(base + i)
        else:
            candidates = [base + m.start() for m in re.finditer(b"\x0f\x05", code)]
            if candidates:
                found.extend(x86_syscalls(elf.path, candidates))
    return found


def x86_syscalls(path, candidates):
    """The candidates (offsets of 0f 05) that objdump decodes as a syscall instruction; all of
    them when objdump is missing (the bytes may start an instruction: no proof they do not)."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return candidates
    out = subprocess.run([objdump, "-d", "-w", "--no-show-raw-insn", path],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{path}: objdump failed: {out.stderr.strip()}")
    return [c for c in candidates if c in objdump_syscalls(path, out.stdout)]


def objdump_syscalls(path, listing):
    """File offsets of the syscall instructions in objdump's listing (addresses are virtual:
    mapped back through the executable sections)."""
    elf = Elf(path)
    offs = set()
    for line in listing.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+syscall\b", line)
        if not m:
            continue
        addr = int(m.group(1), 16)
        for s in elf.sections:
            if s["flags"] & SHF_EXECINSTR and s["addr"] <= addr < s["addr"] + s["size"]:
                offs.add(addr - s["addr"] + s["offset"])
    return offs


def os_of(target):
    if target.endswith("linux-musl"):
        return "linux-musl"
    return target.split("-")[2]


def check(target, path, openbsd_release=None):
    """Every problem of the binary for TARGET, as messages; empty when it is fine."""
    elf = Elf(path)
    info = elf.info()
    os_name = os_of(target)
    exp = EXPECT[os_name]
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
    problems += check_needed(os_name, info["needed"], exp, openbsd_release)
    if exp["note"] is not None and exp["note"] not in elf.notes():
        problems.append(f"no {exp['note'].decode()} ELF note")
    problems += check_notes(os_name, elf)
    if os_name == "openbsd" and not info["nobtcfi"]:
        problems.append("no PT_OPENBSD_NOBTCFI header: indirect branches would fault under IBT")
    if os_name in OS_NOTES and not info["relro"]:
        problems.append("no PT_GNU_RELRO header: the GOT and relocated data stay writable")
    if os_name in OS_NOTES and info["bind_now"] is False:
        problems.append("no BIND_NOW (DT_FLAGS DF_BIND_NOW or DT_FLAGS_1 DF_1_NOW): the GOT "
                        "stays writable for lazy binding, RELRO or not")
    if info["tls_align"] is not None and info["tls_align"] > MAX_TLS_ALIGN:
        problems.append(f"PT_TLS alignment {info['tls_align']} is over {MAX_TLS_ALIGN}")
    problems += check_imports(os_name, elf)
    if os_name in OS_NOTES:
        for off in syscall_offsets(elf, arch):
            problems.append(f"system-call instruction at file offset {off:#x}: only libc may "
                            "make system calls")
    return problems


def check_needed(os_name, needed, exp, openbsd_release):
    problems = []
    release_libs = openbsd_libs(openbsd_release) if openbsd_release else None
    for lib in needed:
        if os_name != "openbsd":
            if lib not in exp["needed"]:
                problems.append(f"NEEDED {lib} is not a base-system library")
            continue
        # OpenBSD's ld.so takes any major for an unversioned name: the name must carry one.
        m = OPENBSD_VERSIONED.match(lib)
        if m is None:
            problems.append(f"NEEDED {lib} has no major.minor version (ld.so would load any "
                            "major: build for one OpenBSD release)")
        elif m.group(1) not in exp["needed"]:
            problems.append(f"NEEDED {lib} is not a base-system library")
        elif release_libs is not None and lib not in release_libs.values():
            problems.append(f"NEEDED {lib} is not OpenBSD {openbsd_release}'s "
                            f"(openbsd-libs.txt: {', '.join(sorted(release_libs.values()))})")
    return problems


def check_notes(os_name, elf):
    if os_name not in OS_NOTES:
        return []
    name, sizes = OS_NOTES[os_name]
    problems = []
    for n_name, n_type, namesz, descsz in elf.note_entries():
        if n_name != name:
            continue
        label = f"{name.decode()} note type {n_type}"
        if namesz != len(name) + 1:
            problems.append(f"{label}: name size {namesz}, expected {len(name) + 1}")
        if n_type not in sizes:
            problems.append(f"{label}: unknown type (known: {sorted(sizes)})")
        elif sizes[n_type] is not None and descsz != sizes[n_type]:
            problems.append(f"{label}: description size {descsz}, expected {sizes[n_type]}")
    if not any(n == name and t == 1 for n, t, _, _ in elf.note_entries()):
        problems.append(f"no {name.decode()} ABI note of type 1")
    return problems


def check_imports(os_name, elf):
    if os_name not in ("netbsd", "freebsd"):
        return []
    imports = elf.imports()
    if imports is None:
        return ["no section headers: the imported symbols cannot be checked"]
    problems = []
    if os_name == "netbsd":
        renamed = netbsd_renamed()
        for name, _, _ in imports:
            if name in renamed and name not in NETBSD_RENAMED_AFTER_10:
                problems.append(f"imports {name}, which NetBSD's headers rename to "
                                f"{renamed[name]} (the plain name is an old ABI)")
    else:
        for name, weak, versioned in imports:
            # FreeBSD's libc keeps every old ABI under a symbol version: an import without one
            # binds to whichever the library's default is today, not the one compiled for.
            if not weak and not versioned:
                problems.append(f"imports {name} without a symbol version")
    return problems


def report(target, path, openbsd_release=None):
    problems = check(target, path, openbsd_release)
    if problems:
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        sys.exit(1)
    info = Elf(path).info()
    print(f"ok {target}: {info['osabi']} {info['machine']} interp={info['interp']} "
          f"NEEDED={','.join(info['needed']) or '-'}"
          + (" PT_OPENBSD_NOBTCFI" if info["nobtcfi"] else "")
          + (" PT_GNU_RELRO" if info["relro"] else "")
          + (" BIND_NOW" if info["bind_now"] else ""))


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
    try:
        run(argv)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        # A truncated or corrupt file: its offsets point outside it.
        path = argv[-1] if len(argv) != 5 else argv[3]
        raise SystemExit(f"{path}: malformed ELF file ({e})") from None


def run(argv):
    if len(argv) in (4, 5) and argv[1] == "check":
        report(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
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
