#!/usr/bin/env python3
"""Tests of cross/elf.py's checks on small ELF files built here byte by byte (no toolchain).

    python3 -m unittest discover -s cross -p 'test_*.py'

Each check is shown to fail on a file with the fault and to pass on the same file without it.
The x86_64 system-call cases that need objdump (binutils) to tell instruction bytes from data
are skipped without it.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import elf  # noqa: E402

SHF_ALLOC = 2
SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_NOTE, SHT_DYNSYM = 1, 3, 6, 7, 11
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL = 0


class Image:
    """An ELF64 little-endian file: sections laid out one after the other at address = file
    offset, one PT_LOAD over the whole file, and the given program headers."""

    def __init__(self, machine, osabi):
        self.machine, self.osabi = machine, osabi
        self.sections = []  # name, type, flags, data (bytes or fn(addr_of) -> bytes), link, entsize
        self.phdrs = []  # type, flags, section name or None, align, memsz

    def section(self, name, sh_type, data, flags=SHF_ALLOC, link=None, entsize=0):
        self.sections.append((name, sh_type, flags, data, link, entsize))

    def phdr(self, p_type, section=None, flags=4, align=8, memsz=None):
        self.phdrs.append((p_type, flags, section, align, memsz))

    def build(self):
        nph = len(self.phdrs) + 1
        off = 64 + 56 * nph
        layout = {}
        sizes = {}
        for name, _, _, data, _, _ in self.sections:
            off = (off + 15) & ~15
            size = len(data if isinstance(data, bytes) else data(lambda n: 0))
            layout[name], sizes[name] = off, size
            off += size
        bodies = {name: (data if isinstance(data, bytes) else data(layout.__getitem__))
                  for name, _, _, data, _, _ in self.sections}
        shstr = b"\0" + b"".join(n.encode() + b"\0" for n, *_ in self.sections) + b".shstrtab\0"
        shstr_off = off
        off += len(shstr)
        shoff = (off + 7) & ~7
        total = shoff + 64 * (len(self.sections) + 2)
        out = bytearray(total)
        index = {n: i + 1 for i, (n, *_) in enumerate(self.sections)}
        struct.pack_into("<4sBBBBB7x", out, 0, b"\x7fELF", 2, 1, 1, self.osabi, 0)
        struct.pack_into("<HHIQQQIHHHHHH", out, 16, 3, self.machine, 1, 0, 64, shoff, 0, 64, 56,
                         nph, 64, len(self.sections) + 2, len(self.sections) + 1)
        phdrs = [(PT_LOAD, 5, 0, total, total, 0x1000)]
        for p_type, flags, sec, align, memsz in self.phdrs:
            o, s = (layout[sec], sizes[sec]) if sec else (0, 0)
            phdrs.append((p_type, flags, o, s, memsz if memsz is not None else s, align))
        for i, (p_type, flags, o, s, m, align) in enumerate(phdrs):
            struct.pack_into("<IIQQQQQQ", out, 64 + 56 * i, p_type, flags, o, o, o, s, m, align)
        for name, body in bodies.items():
            out[layout[name]:layout[name] + len(body)] = body
        out[shstr_off:shstr_off + len(shstr)] = shstr
        name_off = 1
        for i, (name, sh_type, flags, _, link, entsize) in enumerate(self.sections):
            struct.pack_into("<IIQQQQIIQQ", out, shoff + 64 * (i + 1), name_off, sh_type, flags,
                             layout[name], layout[name], sizes[name],
                             index[link] if link else 0, 0, 8, entsize)
            name_off += len(name) + 1
        struct.pack_into("<IIQQQQIIQQ", out, shoff + 64 * (len(self.sections) + 1), name_off,
                         SHT_STRTAB, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
        return bytes(out)


OS = {
    # osabi, interpreter, ident note name, NEEDED
    "netbsd": (0, b"/usr/libexec/ld.elf_so", b"NetBSD", ["libc.so.12"]),
    "freebsd": (9, b"/libexec/ld-elf.so.1", b"FreeBSD", ["libc.so.7"]),
    "openbsd": (0, b"/usr/libexec/ld.so", b"OpenBSD", ["libc.so.102.0", "libpthread.so.28.0"]),
}
MACHINE = {"x86_64": 62, "aarch64": 183}


# The gABI's BIND_NOW requests, spelled out here so that the tests do not take them from the
# checker they test.
DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1 = 24, 30, 0x6FFFFFFB
DF_BIND_NOW, DF_1_NOW = 0x8, 0x1


def note(name, n_type, desc, namesz=None):
    name0 = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return (struct.pack("<III", len(name0) if namesz is None else namesz, len(desc), n_type)
            + pad(name0) + pad(desc))


def make(os_name, arch="x86_64", needed=None, imports=None, notes=None, relro=True,
         tls_align=None, code=b"\xc3", now=((DT_FLAGS, DF_BIND_NOW),)):
    """A file that passes check() for os_name/arch unless one of the arguments says otherwise.
    imports: (name, weak, versioned). now: the dynamic entries that ask for BIND_NOW."""
    osabi, interp, note_name, default_needed = OS[os_name]
    needed = default_needed if needed is None else needed
    if imports is None:
        imports = [("write", False, os_name == "freebsd")]
    notes = [note(note_name, 1, b"\0\0\0\0")] if notes is None else notes
    img = Image(MACHINE[arch], osabi)
    img.section(".interp", SHT_PROGBITS, interp + b"\0")
    img.section(".note", SHT_NOTE, b"".join(notes))
    strings = b"\0"
    offsets = {}
    for s in needed + [n for n, _, _ in imports]:
        offsets[s] = len(strings)
        strings += s.encode() + b"\0"
    img.section(".dynstr", SHT_STRTAB, strings)
    syms = b"\0" * 24 + b"".join(
        struct.pack("<IBBHQQ", offsets[n], ((2 if weak else 1) << 4) | 2, 0, 0, 0, 0)
        for n, weak, _ in imports)
    img.section(".dynsym", SHT_DYNSYM, syms, link=".dynstr", entsize=24)
    img.section(".gnu.version", 0x6FFFFFFF,
                b"\0\0" + b"".join(struct.pack("<H", 2 if v else 1) for _, _, v in imports),
                link=".dynsym", entsize=2)

    def dynamic(addr_of):
        entries = [(elf.DT_NEEDED, offsets[n]) for n in needed]
        entries += [(elf.DT_STRTAB, addr_of(".dynstr")), *now, (DT_NULL, 0)]
        return b"".join(struct.pack("<qQ", t, v) for t, v in entries)

    img.section(".dynamic", SHT_DYNAMIC, dynamic, link=".dynstr", entsize=16)
    img.section(".text", SHT_PROGBITS, code, flags=SHF_ALLOC | elf.SHF_EXECINSTR)
    img.section(".tdata", SHT_PROGBITS, b"\0" * 8)
    img.phdr(PT_INTERP, ".interp")
    img.phdr(PT_NOTE, ".note")
    img.phdr(PT_DYNAMIC, ".dynamic")
    if relro:
        img.phdr(elf.PT_GNU_RELRO, ".dynamic", align=1)
    if tls_align is not None:
        img.phdr(elf.PT_TLS, ".tdata", align=tls_align)
    img.phdr(elf.PT_OPENBSD_NOBTCFI if os_name == "openbsd" else elf.PT_GNU_STACK, flags=6,
             align=0)
    return img.build()


class ElfChecks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def problems(self, data, target, release=None):
        path = os.path.join(self.dir, "wisp")
        with open(path, "wb") as f:
            f.write(data)
        return elf.check(target, path, release)

    def assertFlags(self, problems, text):
        self.assertTrue(any(text in p for p in problems), f"no problem with {text!r}: {problems}")

    def test_good_files_pass(self):
        for os_name in OS:
            for arch in MACHINE:
                with self.subTest(os=os_name, arch=arch):
                    self.assertEqual(self.problems(make(os_name, arch),
                                                   f"{arch}-unknown-{os_name}"), [])

    # 23: OpenBSD NEEDED must carry major.minor, and match the release built for.
    def test_openbsd_unversioned_needed_fails(self):
        p = self.problems(make("openbsd", needed=["libc.so", "libpthread.so"]),
                          "x86_64-unknown-openbsd")
        self.assertFlags(p, "NEEDED libc.so has no major.minor")
        self.assertFlags(p, "NEEDED libpthread.so has no major.minor")

    def test_openbsd_needed_of_the_release(self):
        data = make("openbsd", needed=["libc.so.102.0", "libpthread.so.28.0"])
        self.assertEqual(self.problems(data, "x86_64-unknown-openbsd", "7.8"), [])
        self.assertFlags(self.problems(data, "x86_64-unknown-openbsd", "7.9"),
                         "NEEDED libc.so.102.0 is not OpenBSD 7.9's")

    def test_openbsd_unknown_release_is_an_error(self):
        with self.assertRaises(SystemExit) as e:
            self.problems(make("openbsd"), "x86_64-unknown-openbsd", "6.0")
        self.assertIn("6.0 is not in openbsd-libs.txt", str(e.exception))

    def test_openbsd_libs_table_is_versioned(self):
        for release in ("7.8", "7.9"):
            libs = elf.openbsd_libs(release)
            self.assertEqual({"libc", "libpthread", "libm"}, set(libs))
            for name in libs.values():
                self.assertRegex(name, elf.OPENBSD_VERSIONED)

    # 24: every BSD binary needs PT_GNU_RELRO.
    def test_missing_relro_fails(self):
        for os_name in OS:
            with self.subTest(os=os_name):
                self.assertFlags(self.problems(make(os_name, relro=False),
                                               f"x86_64-unknown-{os_name}"),
                                 "no PT_GNU_RELRO")

    # 25: NetBSD imports of names the headers rename.
    # Issue 16 review: RELRO covers the GOT only with BIND_NOW.
    def test_missing_bind_now_fails(self):
        for os_name in OS:
            with self.subTest(os=os_name):
                target = f"x86_64-unknown-{os_name}"
                self.assertFlags(self.problems(make(os_name, now=()), target), "no BIND_NOW")
                # Flags without the bit are not enough.
                self.assertFlags(self.problems(make(os_name, now=((DT_FLAGS, 0x10),
                                                                  (DT_FLAGS_1, 0x8))),
                                               target), "no BIND_NOW")
                for now in (((DT_FLAGS_1, DF_1_NOW | 0x8000000),),
                            ((DT_BIND_NOW, 0),)):
                    self.assertEqual(self.problems(make(os_name, now=now), target), [])

    def test_netbsd_renamed_import_fails(self):
        for name, new in (("stat", "__stat50"), ("readdir", "__readdir30"),
                          ("socket", "__socket30"), ("gettimeofday", "__gettimeofday50"),
                          ("kevent", "__kevent100"), ("select", "__select50"),
                          ("sigaction", "__sigaction_siginfo"), ("time", "__time50"),
                          ("opendir", "__opendir30"), ("fstat", "__fstat50"),
                          ("lstat", "__lstat50")):
            with self.subTest(name=name):
                p = self.problems(make("netbsd", imports=[(name, False, False)]),
                                  "x86_64-unknown-netbsd")
                self.assertFlags(p, f"imports {name}, which NetBSD's headers rename to {new}")

    def test_netbsd_current_names_pass(self):
        imports = [(n, False, False) for n in ("__stat50", "__kevent50", "__socket30", "chown",
                                               "rename", "dup3", "write")]
        self.assertEqual(self.problems(make("netbsd", imports=imports), "x86_64-unknown-netbsd"),
                         [])

    # 25: FreeBSD imports need a symbol version unless weak.
    def test_freebsd_unversioned_import_fails(self):
        p = self.problems(make("freebsd", imports=[("stat", False, False)]),
                          "x86_64-unknown-freebsd")
        self.assertFlags(p, "imports stat without a symbol version")
        weak = make("freebsd", imports=[("__cxa_thread_atexit_impl", True, False),
                                        ("stat", False, True)])
        self.assertEqual(self.problems(weak, "x86_64-unknown-freebsd"), [])

    # 25: system-call instructions.
    def test_aarch64_svc_fails_at_an_instruction_boundary(self):
        svc = b"\x01\x00\x00\xd4"
        p = self.problems(make("netbsd", "aarch64", code=b"\x1f\x20\x03\xd5" + svc),
                          "aarch64-unknown-netbsd")
        self.assertFlags(p, "system-call instruction")
        # The same bytes across two instructions are not one.
        split = b"\x1f\x20\x01\x00" + b"\x00\xd4\x03\xd5"
        self.assertEqual(self.problems(make("netbsd", "aarch64", code=split),
                                       "aarch64-unknown-netbsd"), [])

    @unittest.skipUnless(shutil.which("objdump"), "needs objdump to decode x86_64")
    def test_x86_64_syscall_fails(self):
        for os_name in OS:
            with self.subTest(os=os_name):
                p = self.problems(make(os_name, code=b"\x0f\x05\xc3"),
                                  f"x86_64-unknown-{os_name}")
                self.assertFlags(p, "system-call instruction")

    @unittest.skipUnless(shutil.which("objdump"), "needs objdump to decode x86_64")
    def test_x86_64_syscall_bytes_inside_an_instruction_pass(self):
        # mov $0x50f, %eax: 0f 05 is its immediate, not an instruction.
        data = make("openbsd", code=b"\xb8\x0f\x05\x00\x00\xc3")
        self.assertEqual(self.problems(data, "x86_64-unknown-openbsd"), [])

    def test_x86_64_syscall_bytes_without_objdump_fail(self):
        data = make("netbsd", code=b"\xb8\x0f\x05\x00\x00\xc3")
        saved = elf.shutil.which
        elf.shutil.which = lambda name: None
        try:
            self.assertFlags(self.problems(data, "x86_64-unknown-netbsd"),
                             "system-call instruction")
        finally:
            elf.shutil.which = saved

    # 25: OS notes of the wrong type or size.
    def test_os_note_wrong_size_or_type_fails(self):
        for os_name, (_, _, name, _) in OS.items():
            target = f"x86_64-unknown-{os_name}"
            with self.subTest(os=os_name):
                self.assertFlags(self.problems(make(os_name, notes=[note(name, 1, b"\0" * 8)]),
                                               target),
                                 "note type 1: description size 8, expected 4")
                p = self.problems(make(os_name, notes=[note(name, 7, b"\0" * 4)]), target)
                self.assertFlags(p, "note type 7: unknown type")
                self.assertFlags(p, "ABI note of type 1")
                self.assertFlags(self.problems(make(os_name, notes=[
                    note(name, 1, b"\0" * 4, namesz=len(name))]), target),
                    f"name size {len(name)}")

    # 25: TLS alignment.
    def test_tls_alignment_over_16_fails(self):
        for os_name in OS:
            target = f"x86_64-unknown-{os_name}"
            with self.subTest(os=os_name):
                self.assertEqual(self.problems(make(os_name, tls_align=16), target), [])
                self.assertFlags(self.problems(make(os_name, tls_align=64), target),
                                 "PT_TLS alignment 64 is over 16")


class Malformed(unittest.TestCase):
    def test_truncated_file_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "wisp")
            with open(path, "wb") as f:
                f.write(make("netbsd")[:200])
            out = subprocess.run([sys.executable, os.path.join(HERE, "elf.py"), "check",
                                  "x86_64-unknown-netbsd", path], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn(f"{path}: malformed ELF file", out.stderr)
        self.assertNotIn("Traceback", out.stderr)


class NetbsdRenamed(unittest.TestCase):
    """cross/netbsd-renamed.py, on a small include tree."""

    def test_generator(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "sys"))
            os.makedirs(os.path.join(d, "rump"))
            with open(os.path.join(d, "sys", "stat.h"), "w") as f:
                f.write("/* stat(2) */\nint\tstat(const char *, struct stat *) "
                        "__RENAME(__stat50);\n#define X(a) \\\n  foo(a)\n"
                        "int\tgetmntinfo(struct statvfs **, int)\n    __RENAME(__getmntinfo90);\n")
            with open(os.path.join(d, "unistd.h"), "w") as f:
                f.write("#if defined(_POSIX_C_SOURCE)\nint chown(const char *, uid_t, gid_t) "
                        "__RENAME(__posix_chown);\n#else\nint chown(const char *, uid_t, gid_t);"
                        "\n#endif\n")
            with open(os.path.join(d, "signal.h"), "w") as f:
                f.write("int sigaddset(sigset_t *, int) __RENAME(__sigaddset14);\n"
                        "static __inline int sigaddset(sigset_t *s, int n) { return 0; }\n")
            with open(os.path.join(d, "rump", "r.h"), "w") as f:
                f.write("int rump_sys_read(int) __RENAME(RUMP_SYS_RENAME_READ);\n")
            out = subprocess.run([sys.executable, os.path.join(HERE, "netbsd-renamed.py"), d],
                                 capture_output=True, text=True, check=True).stdout
        rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
        self.assertEqual(rows, [["getmntinfo", "__getmntinfo90", "sys/stat.h"],
                                ["sigaddset", "__sigaddset14", "signal.h"],
                                ["stat", "__stat50", "sys/stat.h"]])

    def test_data_file_has_the_std_names(self):
        renamed = elf.netbsd_renamed()
        for name in ("stat", "fstat", "lstat", "opendir", "readdir", "socket", "time",
                     "gettimeofday", "select", "kevent", "sigaction", "clock_gettime",
                     "nanosleep", "getpwnam_r", "sigprocmask"):
            self.assertIn(name, renamed)


if __name__ == "__main__":
    unittest.main()
