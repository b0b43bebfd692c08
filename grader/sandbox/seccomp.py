"""A seccomp filter for the sandboxed worker: the system calls that grading never needs, refused.

bubblewrap loads it (``bwrap --seccomp FD``) just before it starts the worker, after it has set
up the sandbox's namespaces and mounts, so it binds the worker and everything the worker starts.
The program is classic BPF over ``struct seccomp_data`` (nr at offset 0, arch at 4, the six
arguments from 16), built here from a table of syscall numbers, so that no library is needed:

- another architecture's calling convention (x86's ``int 0x80`` on x86_64, the x32 ABI) kills
  the process: the table below would not describe those calls;
- the calls in ``REFUSED`` fail with EPERM: tracing and reading other processes (``ptrace``,
  ``process_vm_*``), mounting, namespaces (``unshare``, ``setns``), the kernel keyring, BPF,
  perf events, modules, kexec, io_uring, clock and host settings;
- ``clone`` with any namespace flag fails with EPERM (a new user namespace would give the
  worker capabilities inside it again), and ``clone3``, whose flags live in memory a filter
  cannot read, fails with ENOSYS, which makes the C library fall back to ``clone``.

Anything else is allowed: Python, NumPy and torch keep working unchanged (threads, fork,
mmap, signals to their own processes).
"""

from __future__ import annotations

import platform
import struct

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38

OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data, little-endian: arg0's low 32 bits
X32_SYSCALL_BIT = 0x40000000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

REFUSED = (
    "ptrace process_vm_readv process_vm_writev mount umount2 pivot_root chroot unshare setns "
    "keyctl add_key request_key bpf perf_event_open userfaultfd kexec_load kexec_file_load "
    "init_module finit_module delete_module swapon swapoff reboot open_by_handle_at name_to_handle_at "
    "fsopen fsconfig fsmount fspick move_mount open_tree mount_setattr io_uring_setup io_uring_enter "
    "io_uring_register acct settimeofday clock_settime adjtimex clock_adjtime sethostname setdomainname "
    "quotactl syslog"
).split()

# Syscall numbers from the kernel's headers: asm/unistd_64.h (x86_64), asm-generic/unistd.h (aarch64).
_X86_64 = dict(
    clone=56, ptrace=101, syslog=103, pivot_root=155, adjtimex=159, chroot=161, acct=163, settimeofday=164,
    mount=165, umount2=166, swapon=167, swapoff=168, reboot=169, sethostname=170, setdomainname=171,
    init_module=175, delete_module=176, quotactl=179, clock_settime=227, kexec_load=246, add_key=248,
    request_key=249, keyctl=250, unshare=272, perf_event_open=298, name_to_handle_at=303, open_by_handle_at=304,
    clock_adjtime=305, setns=308, process_vm_readv=310, process_vm_writev=311, finit_module=313,
    kexec_file_load=320, bpf=321, userfaultfd=323, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
    open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, clone3=435,
    mount_setattr=442,
)  # fmt: skip
_AARCH64 = dict(
    umount2=39, mount=40, pivot_root=41, chroot=51, quotactl=60, acct=89, unshare=97, kexec_load=104,
    init_module=105, delete_module=106, clock_settime=112, syslog=116, ptrace=117, reboot=142, sethostname=161,
    setdomainname=162, settimeofday=170, adjtimex=171, add_key=217, request_key=218, keyctl=219, clone=220,
    swapon=224, swapoff=225, perf_event_open=241, name_to_handle_at=264, open_by_handle_at=265,
    clock_adjtime=266, setns=268, process_vm_readv=270, process_vm_writev=271, finit_module=273, bpf=280,
    userfaultfd=282, kexec_file_load=294, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
    open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432, fspick=433, clone3=435,
    mount_setattr=442,
)  # fmt: skip
ARCHES = {"x86_64": (0xC000003E, _X86_64), "aarch64": (0xC00000B7, _AARCH64)}  # AUDIT_ARCH_*


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter


def program(machine: str | None = None, refused: tuple[str, ...] | list[str] = tuple(REFUSED)) -> bytes | None:
    """The filter for this machine's architecture, or None where there is no table for it: ``refused`` fail with
    EPERM, and clone with a namespace flag (clone3 with ENOSYS)."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        return None
    arch, numbers = ARCHES[machine]
    code = [
        _insn(LD_W_ABS, OFFSET_ARCH),
        _insn(JEQ_K, arch, jt=1),
        _insn(RET_K, RET_KILL_PROCESS),
        _insn(LD_W_ABS, OFFSET_NR),
    ]
    if machine == "x86_64":
        code += [_insn(JGE_K, X32_SYSCALL_BIT, jf=1), _insn(RET_K, RET_KILL_PROCESS)]
    for name in refused:
        code += [_insn(JEQ_K, numbers[name], jf=1), _insn(RET_K, RET_ERRNO | EPERM)]
    code += [
        _insn(JEQ_K, numbers["clone3"], jf=1),
        _insn(RET_K, RET_ERRNO | ENOSYS),
        _insn(JEQ_K, numbers["clone"], jf=3),  # not clone: allow
        _insn(LD_W_ABS, OFFSET_ARG0),  # clone's flags (the first argument on both architectures)
        _insn(JSET_K, CLONE_NAMESPACES, jf=1),
        _insn(RET_K, RET_ERRNO | EPERM),
        _insn(RET_K, RET_ALLOW),
    ]
    return b"".join(code)
